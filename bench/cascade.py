"""The classification cascade: the local classifier's threshold calibrated on the sample's
labelled questions, its accuracy on both corpora, the share of first turns that skip the
classify model, the answers' citation recall with and without it, and the conversation replay's
model calls and first-turn latency with it off and on."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench import conversations as scripted
from bench.citations import LODESTAR, Question, retrieved_and_answered
from bench.figures import Summary, goals, ms, ratio, reproduce, table
from bench.latency import sample_runtime
from bench.replay import SCALE, WARM_UP
from bench.simulated_models import CHEAP, PRICES, STRONG, CallLog, installed

TITLE = "Classification cascade: first turns classified without a model call"
# Calibration: the local decisions on the sample must be at least this often right (about what a
# cheap model picking from descriptions gets; the offline model cannot stand in for one).
ACCURACY_TARGET = 0.90
MIN_DECIDED = 10
GRID = tuple(round(0.50 + step / 100, 2) for step in range(50))  # 0.50 .. 0.99
CALLS_GOAL = 1.2  # model calls per question in the replay, cache on (issue #13)
MODES = ("lexical", "fused")


@dataclass(frozen=True)
class Labelled:
    """One labelled question: its local vote, and what each arm of the cascade made of it."""

    question: Question
    label: str  # the category of the document that answers it
    eligible: bool  # its language was detected and the knowledge base covers it
    voted: str | None
    confidence: float
    model: str  # the category the classify model (offline) gives it
    cascade: str  # the category with the cascade on (local when decided, else the model's)
    decided: bool  # the cascade decided it locally
    cited_on: bool  # the answer cited the expected document, cascade on
    cited_off: bool  # ... and off


@dataclass
class CorpusRun:
    corpus: str
    mode: str
    documents: int = 0
    chunks: int = 0
    covered: list[str] = field(default_factory=list)
    rows: list[Labelled] = field(default_factory=list)
    skipped: str = ""


@dataclass(frozen=True)
class ReplayTurn:
    turn: scripted.Turn
    seconds: float
    model_seconds: float
    cached: bool
    llm_calls: int
    local: bool  # classify decided it without a model call


@dataclass
class CascadeResult:
    threshold: float = 0.0  # the configured default
    calibrated: float = 1.0  # on the sample
    runs: list[CorpusRun] = field(default_factory=list)
    replay: dict[str, list[ReplayTurn]] = field(default_factory=dict)  # "off" / "on"
    # The vote's confidence on each first turn of the replay that is not a repeat (-1: its
    # language is not covered), on the sample's lexical index.
    replay_votes: list[float] = field(default_factory=list)
    scale: float = SCALE
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cascade-no-replay",
        action="store_true",
        help="cascade: leave out the conversation replay (about 2 minutes)",
    )


# -- labelled questions -------------------------------------------------------------------------
def _questions(paths: Sequence[Path]) -> list[Question]:
    return [
        Question.model_validate_json(line)
        for path in paths
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]


def _dense() -> Any | None:
    """The dense model, when the `dense` extra is installed (else the fused mode is skipped)."""
    from concierge import wiring
    from concierge.errors import ConciergeError

    try:
        return wiring.dense_embedder()
    except ConciergeError:
        return None


def _corpus(
    corpus: str, docs: Path, files: Sequence[Path], mode: str, embedder: Any | None
) -> CorpusRun:
    """Every answerable question of the corpus through the cascade's two arms: classify (with
    the local classifier at every threshold of the grid recorded as its vote, and at the
    configured one as the chain runs it), then the chain's retrieve and answer steps."""
    from concierge.adapters.llm.offline import OfflineModel
    from concierge.adapters.retrieval.local_index import LocalIndex
    from concierge.config import CascadeSettings, CategorySettings, RetrieveSettings
    from concierge.models.state import ClassifyInput
    from concierge.steps.calls import ModelRoute
    from concierge.steps.cascade import LOCAL_MODEL, LocalClassifier
    from concierge.steps.classify import classify
    from concierge.steps.structured import CategoryMenu
    from concierge.text import detect_language
    from concierge_cli.ingestion import build_index

    index = build_index([docs], embedder=embedder)
    retriever = LocalIndex(index, embedder)
    catalog, categories = index.catalog(), {c.source: c.category for c in index.chunks}
    run = CorpusRun(corpus, mode, len(categories), len(index.chunks), catalog.covered_languages())
    settings, top_k = CategorySettings(), RetrieveSettings.model_fields["top_k"].default
    menu = CategoryMenu.of(settings, catalog)
    local = LocalClassifier(retriever, CascadeSettings.model_fields["local_confidence"].default)
    route = ModelRoute(step="bench", models=[OfflineModel()])

    def cited(
        q: Question, expected: str, cascade: LocalClassifier | None
    ) -> tuple[str, bool, bool]:
        """The category, whether the answer cited `expected`, and whether classify decided
        without the model."""
        request = ClassifyInput(request_id="bench", question=q.question, deadline_ms=2**62)
        got = classify(request, settings, route, catalog=catalog, local=cascade)
        # The offline model cannot translate; a deployed model would, where the knowledge base
        # does not cover the language: the question's own translation stands in for its reply.
        translated = got.usage.model != LOCAL_MODEL and not catalog.covers(got.language)
        search_query = q.translation if translated else None
        _, replied = retrieved_and_answered(
            q.question, got.category, got.language, search_query, retriever, route, top_k
        )
        sources = {c.source for c in replied.citations}
        return got.category, expected in sources, got.usage.model == LOCAL_MODEL

    for q in _questions(files):
        if not q.expected_source or q.kind == "unanswerable":
            continue
        expected = q.expected_source
        language = detect_language(q.question, default="")
        poll = local.poll(q.question)
        on, cited_on, decided = cited(q, expected, local)
        off, cited_off, _ = cited(q, expected, None)
        run.rows.append(
            Labelled(
                question=q,
                label=q.category or categories[expected],
                eligible=bool(language) and menu.covers(language),
                voted=poll.category,
                confidence=poll.confidence,
                model=off,
                cascade=on,
                decided=decided,
                cited_on=cited_on,
                cited_off=cited_off,
            )
        )
    return run


def _decided(rows: Sequence[Labelled], threshold: float) -> list[Labelled]:
    return [r for r in rows if r.eligible and r.confidence >= threshold]


def _accuracy(rows: Sequence[Labelled]) -> float:
    return ratio(sum(r.voted == r.label for r in rows), len(rows))


def calibrate(runs: dict[str, Sequence[Labelled]]) -> float:
    """The lowest threshold of the grid whose local decisions are at least ACCURACY_TARGET
    right on every kind of index measured (lexical, and fused when the dense extra is there),
    deciding at least MIN_DECIDED questions on each: a deployment builds either. 1.0: none is."""
    for threshold in GRID:
        decided = [_decided(rows, threshold) for rows in runs.values()]
        if all(len(d) >= MIN_DECIDED and _accuracy(d) >= ACCURACY_TARGET for d in decided):
            return threshold
    return 1.0


# -- the replay ---------------------------------------------------------------------------------
def _replay_votes(sample: Path, conversations: list[scripted.Conversation]) -> list[float]:
    from concierge.adapters.retrieval.local_index import LocalIndex
    from concierge.steps.cascade import LocalClassifier
    from concierge.text import detect_language
    from concierge_cli.ingestion import build_index

    index = build_index([sample])
    catalog, local = index.catalog(), LocalClassifier(LocalIndex(index), threshold=1.0)
    firsts = [c.turns[0].text for c in conversations if c.turns[0].kind not in scripted.REPEATS]
    return [
        local.poll(text).confidence
        if (language := detect_language(text, default="")) and catalog.covers(language)
        else -1.0
        for text in firsts
    ]


def _replay(
    root: Path, conversations: list[scripted.Conversation], cascade: str, scale: float
) -> list[ReplayTurn]:
    """The conversations through Concierge as shipped, cache on, simulated models, with the
    local classifier `cascade` ("on" / "off"), in a runtime of its own (an empty cache)."""
    environ = {
        "CONCIERGE_CLASSIFY_MODEL": CHEAP.spec,
        "CONCIERGE_CONDENSE_MODEL": CHEAP.spec,
        "CONCIERGE_ANSWER_MODEL": STRONG.spec,
        "CONCIERGE_MODEL_PRICES": PRICES,
        "CONCIERGE_LOCAL_CLASSIFIER": cascade,
    }
    log, tag, turns = CallLog(), uuid.uuid4().hex[:8], []
    with installed(scale, log), sample_runtime(root, environ) as chat:
        for conversation in scripted.parse(WARM_UP, "warm-up"):
            for turn in conversation.turns:
                chat.ask(turn.text, f"warm-{tag}-{conversation.id}")
        for conversation in conversations:
            for turn in conversation.turns:
                mark = log.mark()
                reply = chat.ask(turn.text, f"cascade-{tag}-{conversation.id}")
                output = json.loads((chat.execution(reply.request_id) or {}).get("output") or "{}")
                steps = output.get("usage") or [] if isinstance(output, dict) else []
                turns.append(
                    ReplayTurn(
                        turn,
                        reply.seconds,
                        log.busy_seconds(mark),
                        bool(reply.body["cached"]),
                        int(reply.body["usage"]["llm_calls"]),
                        any(
                            s and s.get("step") == "classify" and s.get("model") == "local"
                            for s in steps
                        ),
                    )
                )
    return turns


def run(args: argparse.Namespace, root: Path, log: TextIO) -> CascadeResult:
    from concierge.config import CascadeSettings

    result = CascadeResult(threshold=CascadeSettings.model_fields["local_confidence"].default)
    embedder = _dense()
    modes = MODES if embedder is not None else MODES[:1]
    sample = root / "knowledge" / "sample"
    lodestar = root / LODESTAR
    corpora: list[tuple[str, Path, list[Path]]] = [("sample", sample, [sample / "qa.jsonl"])]
    lodestar_files = sorted((lodestar / "questions").glob("*.jsonl"))
    if (lodestar / "docs").is_dir() and lodestar_files:
        corpora.append(("lodestar", lodestar / "docs", lodestar_files))
    for corpus, docs, files in corpora:
        for mode in modes:
            print(f"  cascade: {corpus}, {mode}", file=log)
            run_ = _corpus(corpus, docs, files, mode, embedder if mode == "fused" else None)
            result.runs.append(run_)

    if len(corpora) == 1:
        result.runs.append(CorpusRun("lodestar", "-", skipped=f"no questions in {LODESTAR}"))
    result.calibrated = calibrate({r.mode: r.rows for r in result.runs if r.corpus == "sample"})
    if result.calibrated != result.threshold:
        result.errors.append(
            f"cascade: the default threshold {result.threshold} is not the calibrated "
            f"{result.calibrated}: set CascadeSettings.local_confidence"
        )
    conversations = scripted.load(scripted.DEFAULT_PATH)
    result.replay_votes = _replay_votes(sample, conversations)
    if not args.cascade_no_replay:
        for cascade in ("off", "on"):
            print(f"  cascade: the replay, local classifier {cascade}", file=log)
            result.replay[cascade] = _replay(root, conversations, cascade, result.scale)
    return result


# -- figures ------------------------------------------------------------------------------------
def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({ratio(part, whole):.0%})"


def _calibration(result: CascadeResult) -> str:
    sample = {r.mode: r.rows for r in result.runs if r.corpus == "sample"}
    marked = (result.calibrated, result.threshold)
    shown = [t for t in GRID if round(t * 100) % 5 == 0 or t in marked]
    headers = [
        "threshold",
        *(f"sample, {mode}: decided / right" for mode in sample),
        "replay's new first turns decided",
    ]
    rows = []
    for threshold in shown:
        cells = [f"**{threshold:.2f}**" if threshold == result.threshold else f"{threshold:.2f}"]
        for rows_ in sample.values():
            decided = _decided(rows_, threshold)
            cells.append(f"{len(decided)} / {_accuracy(decided):.2f}")
        firsts = result.replay_votes
        cells.append(_share(sum(c >= threshold for c in firsts if c >= 0), len(firsts)))
        rows.append(cells)
    return "\n".join(
        [
            f"### Calibration on the sample (target: decisions ≥ {ACCURACY_TARGET:.0%} right)",
            "",
            f"Calibrated: **{result.calibrated:.2f}** (the default: {result.threshold:.2f}). The "
            "last column is how many of the replay's first turns that are not repeats (those "
            "the cache cannot serve) each threshold would decide, on the sample's lexical index.",
            "",
            table(headers, rows),
        ]
    )


def _accuracy_table(result: CascadeResult) -> str:
    headers = [
        "corpus, search",
        "questions",
        "covered language",
        "vote right (covered)",
        "decided locally",
        "decided: right",
        "model alone: right",
        "cascade: right",
        "citation recall, off → on",
    ]
    rows = []
    for r in result.runs:
        if r.skipped:
            rows.append([f"`{r.corpus}`", r.skipped, *[""] * (len(headers) - 2)])
            continue
        eligible = [x for x in r.rows if x.eligible]
        decided = [x for x in r.rows if x.decided]
        n = len(r.rows)
        rows.append(
            [
                f"`{r.corpus}`, {r.mode}",
                str(n),
                f"{len(eligible)} ({', '.join(r.covered)})",
                f"{_accuracy(eligible):.2f}",
                _share(len(decided), n),
                f"{ratio(sum(x.voted == x.label for x in decided), len(decided)):.2f}",
                f"{ratio(sum(x.model == x.label for x in r.rows), n):.2f}",
                f"{ratio(sum(x.cascade == x.label for x in r.rows), n):.2f}",
                f"{ratio(sum(x.cited_off for x in r.rows), n):.2f} → "
                f"{ratio(sum(x.cited_on for x in r.rows), n):.2f}",
            ]
        )
    wrong = [
        [
            x.question.question,
            x.question.language,
            f"`{x.label}`",
            f"`{x.voted}`",
            f"{x.confidence:.2f}",
        ]
        for r in result.runs
        if r.corpus == "sample" and r.mode == "lexical"
        for x in r.rows
        if x.decided and x.voted != x.label
    ]
    return "\n".join(
        [
            f"### The local classifier at {result.threshold:.2f}, both corpora",
            "",
            table(headers, rows),
            "",
            "Decided locally and wrong on the sample (lexical):",
            "",
            table(["question", "lang", "label", "vote", "confidence"], wrong, "lllll")
            if wrong
            else "none.",
        ]
    )


def _first_turns(turns: Sequence[ReplayTurn], answered: bool | None) -> list[ReplayTurn]:
    firsts = [t for t in turns if not t.turn.is_follow_up]
    return firsts if answered is None else [t for t in firsts if t.cached != answered]


def _timed(turns: Sequence[ReplayTurn], scale: float) -> Summary:
    return Summary.of([t.seconds + t.model_seconds * (1 / scale - 1) for t in turns])


def _replay_table(result: CascadeResult) -> str:
    off, on = result.replay["off"], result.replay["on"]
    rows = []
    for label, pick in (
        (
            "model calls per question",
            lambda ts: f"{ratio(sum(t.llm_calls for t in ts), len(ts)):.2f}",
        ),
        ("first turns answered (not from the cache)", lambda ts: str(len(_first_turns(ts, True)))),
        (
            "of them classified locally",
            lambda ts: _share(
                sum(t.local for t in _first_turns(ts, True)), len(_first_turns(ts, True))
            ),
        ),
        (
            "first turns answered: p50 (ms)",
            lambda ts: ms(Summary.of([t.seconds for t in _first_turns(ts, True)]).p50_ms, 0),
        ),
        (
            "... projected to full model latency (ms)",
            lambda ts: ms(_timed(_first_turns(ts, True), result.scale).p50_ms, 0),
        ),
        (
            "all first turns: p50 (ms)",
            lambda ts: ms(Summary.of([t.seconds for t in _first_turns(ts, None)]).p50_ms, 0),
        ),
        (
            "... projected (ms)",
            lambda ts: ms(_timed(_first_turns(ts, None), result.scale).p50_ms, 0),
        ),
        ("cache hits", lambda ts: _share(sum(t.cached for t in ts), len(ts))),
    ):
        rows.append([label, pick(off), pick(on)])
    return "\n".join(
        [
            f"### The conversation replay, cache on ({len(on)} questions, model latencies x "
            f"{result.scale:g})",
            "",
            table(["", "local classifier off", "on"], rows),
        ]
    )


def _calls(turns: Sequence[ReplayTurn]) -> float:
    return ratio(sum(t.llm_calls for t in turns), len(turns))


def render(result: CascadeResult) -> str:
    met = []
    for r in result.runs:
        if r.corpus == "sample" and r.mode == "lexical":
            decided = [x for x in r.rows if x.decided]
            right = ratio(sum(x.voted == x.label for x in decided), len(decided))
            met.append(
                (
                    "sample: local decisions right (calibrated)",
                    f"≥ {ACCURACY_TARGET:.2f}",
                    f"{right:.2f} ({len(decided)} decided)",
                    right >= ACCURACY_TARGET,
                )
            )
    if result.replay:
        calls = _calls(result.replay["on"])
        met.append(
            (
                "model calls per question, replay, cache on",
                f"≤ {CALLS_GOAL}",
                f"{calls:.2f} (local classifier off: {_calls(result.replay['off']):.2f})",
                calls <= CALLS_GOAL,
            )
        )
    parts = [
        reproduce(TITLE, "cascade"),
        goals(*met),
        _calibration(result),
        _accuracy_table(result),
    ]
    if result.replay:
        parts.append(_replay_table(result))
    return "\n\n".join(parts)
