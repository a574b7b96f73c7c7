"""Conversation replay with simulated models: LLM calls, cost and follow-up latency of
Concierge (cache on and off) against a naive sequential chain."""

from __future__ import annotations

import argparse
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from bench import conversations as scripted
from bench.figures import Summary, goals, ms, ratio, reproduce, table, x
from bench.latency import BenchError, Chat, sample_runtime
from bench.simulated_models import CHEAP, PRICES, STRONG, CallLog, SimulatedModel, installed

TITLE = "Conversation replay: cost and follow-up latency vs the naive chain"
CONCIERGE, CACHE_OFF, NAIVE = "Concierge", "Concierge, cache off", "naive"
CHAINS = (CONCIERGE, CACHE_OFF, NAIVE)
STEPS = ("classify", "condense", "answer")
SCALE = 0.3
COST_GOAL = 0.35  # Concierge cost per question / naive cost per question
FOLLOW_UP_GOAL = 0.8  # Concierge follow-up p50 / naive follow-up p50
CALLS_GOAL = 1.3  # Concierge (cache on) LLM calls per question
# The answer model of the cost what-if: list price USD per 1K tokens (in / out), as prices.toml.
WHAT_IF = ("Claude 3.5 Haiku", "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0", 0.0008, 0.004)
WARM_UP = [  # never asked in the replay (checked)
    {"id": "warm-up-0", "turns": ["Do you ship to Switzerland?", "And how much is it?"]},
    {"id": "warm-up-1", "turns": ["¿Tenéis sacos de dormir?", "¿Y cuánto pesan?"]},
]
Ask = Callable[[str, list[tuple[str, str]]], tuple[str, bool, list[dict[str, Any]]]]


def _naive_chain(model: SimulatedModel) -> Ask:
    """The reference chain on concierge's own steps, every prompt on `model`: classify, then a
    plain condense rewrite (every turn, no history on a first one), retrieve, answer; no cache.
    Every call this module makes into concierge is in here."""
    from concierge import config, wiring
    from concierge.models.state import AnswerInput, ClassifyInput, HistoryTurn, RetrieveInput
    from concierge.pricing import PriceTable
    from concierge.prompt_library import Prompt
    from concierge.steps.answer import answer
    from concierge.steps.calls import ModelRoute, RetryPolicy, call_model
    from concierge.steps.classify import classify
    from concierge.steps.condense import transcript
    from concierge.steps.retrieve import retrieve

    categories = wiring.settings(config.CategorySettings)
    # The knowledge base's categories, as the deployed classify reads them; no local classifier:
    # the reference architecture asks the model every time.
    catalog = wiring.catalog()
    history_tokens = wiring.settings(config.CondenseSettings).history_tokens
    top_k = wiring.settings(config.RetrieveSettings).top_k
    budget_ms = wiring.settings(config.ApiSettings).request_budget_ms
    runtime = wiring.settings(config.ModelRuntimeSettings)
    retriever = wiring.retriever()
    route = ModelRoute(
        step="naive",
        models=[model],
        prices=PriceTable(runtime.model_prices),
        policy=RetryPolicy(
            attempts_per_model=runtime.model_attempts,
            base_delay_s=runtime.retry_base_delay_ms / 1000,
            max_delay_s=runtime.retry_max_delay_ms / 1000,
        ),
    )
    rewrite = Prompt(  # the text of Concierge's condense-1, before condense classified too
        name="condense",
        version="naive-condense",
        system="You rewrite the user's latest question so that it can be understood without the "
        "conversation.\nKeep the user's language. Replace pronouns with what they refer to. Do "
        "not answer the question.\nReply with the rewritten question only.",
        template="Conversation so far (oldest first):\n$history\n\nLatest question: $question"
        "\n\nStandalone question:",
        max_tokens=200,
        temperature=0.0,
        top_p=1.0,
    )

    def ask(
        question: str, history: list[tuple[str, str]]
    ) -> tuple[str, bool, list[dict[str, Any]]]:
        request_id, deadline_ms = uuid.uuid4().hex, int(time.time() * 1000) + budget_ms
        classified = classify(
            ClassifyInput(request_id=request_id, question=question, deadline_ms=deadline_ms),
            categories,
            route,
            catalog=catalog,
        )
        turns = [HistoryTurn(question=asked, answer=said) for asked, said in history]
        reply, condense_usage = call_model(
            route,
            "condense",
            rewrite,
            system=rewrite.render_system(),
            user=rewrite.render(
                history=transcript(turns, history_tokens) or "(none)", question=question
            ),
            inputs={
                "question": question,
                "history": [turn.model_dump() for turn in turns],
                "categories": {},
                "default_category": categories.default_category,
                "reply_format": "text",
            },
            deadline_ms=deadline_ms,
        )
        standalone = reply.text.strip().strip('"').strip() or question
        where = {"category": classified.category, "language": classified.language}
        passages = retrieve(
            RetrieveInput(
                request_id=request_id, question=standalone, deadline_ms=deadline_ms, **where
            ),
            retriever,
            top_k,
        ).passages
        answered = answer(
            AnswerInput(
                request_id=request_id,
                question=standalone,
                language=classified.language,
                passages=passages,
                deadline_ms=deadline_ms,
            ),
            route,
        )
        usages = [classified.usage, condense_usage, answered.usage]
        return answered.answer, bool(answered.citations), [u.model_dump() for u in usages]

    return ask


@dataclass(frozen=True)
class TurnResult:
    turn: scripted.Turn
    seconds: float
    model_seconds: float  # of `seconds`, a simulated model was running (overlaps once)
    cached: bool
    grounded: bool
    llm_calls: int
    cost_usd: float
    steps: dict[str, Counter[str]]  # step -> llm_calls, input_tokens, output_tokens, cost_usd


@dataclass
class ReplayResult:
    scale: float
    path: Path
    conversations: list[scripted.Conversation]
    turns: dict[str, list[TurnResult]] = field(default_factory=lambda: {c: [] for c in CHAINS})
    # Both Concierge chains run in one runtime and share the CONCIERGE log.
    logs: dict[str, CallLog] = field(default_factory=lambda: {c: CallLog() for c in CHAINS})
    index_chunks: int = 0
    warm_up_turns: int = 0
    steps_missing: int = 0  # Concierge turns whose execution output could not be read
    wall_seconds: float = 0.0
    chain_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CHAINS, 0.0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def positive(value: str) -> float:
        if not float(value) > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0: {value}")
        return float(value)

    parser.add_argument(
        "--replay-scale",
        type=positive,
        default=SCALE,
        help=f"replay: factor on the simulated models' latency (default {SCALE:g})",
    )
    parser.add_argument(
        "--conversations",
        type=Path,
        default=scripted.DEFAULT_PATH,
        help="replay: the scripted conversations (default bench/conversations.jsonl)",
    )


def _by_step(usages: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    steps: dict[str, Counter[str]] = {}
    for usage in usages:
        figures = ("llm_calls", "input_tokens", "output_tokens", "cost_usd")
        steps.setdefault(str(usage["step"]), Counter()).update({k: usage[k] for k in figures})
    return steps


def _concierge(
    chat: Chat, session_id: str, bypass: bool, result: ReplayResult
) -> Callable[[scripted.Turn], TurnResult]:
    def measure(turn: scripted.Turn) -> TurnResult:
        reply = chat.ask(turn.text, session_id, bypass_cache=bypass)
        body, usage = reply.body, reply.body["usage"]
        if bypass and body["cached"]:
            raise BenchError(f"{turn.text!r} was served from the cache with the cache off")
        # A first-turn hit calls no model; a follow-up hit only the condense that keyed it.
        if body["cached"] and usage["llm_calls"] > turn.is_follow_up:
            raise BenchError(f"cache hit {turn.text!r} called a model: {usage}")
        description = chat.execution(reply.request_id) or {}
        output = json.loads(description.get("output") or "null") or {}
        steps = output.get("usage") if isinstance(output, dict) else None
        result.steps_missing += steps is None
        return TurnResult(
            turn,
            reply.seconds,
            0.0,
            bool(body["cached"]),
            bool(body["citations"]),
            int(usage["llm_calls"]),
            float(usage["cost_usd"]),
            _by_step(steps or []),
        )

    return measure


def _naive(ask: Ask) -> Callable[[scripted.Turn], TurnResult]:
    history: list[tuple[str, str]] = []  # one conversation's

    def measure(turn: scripted.Turn) -> TurnResult:
        started = time.perf_counter()
        said, grounded, usages = ask(turn.text, history)
        seconds = time.perf_counter() - started
        history.append((turn.text, said))
        calls, cost = sum(u["llm_calls"] for u in usages), sum(u["cost_usd"] for u in usages)
        return TurnResult(turn, seconds, 0.0, False, grounded, calls, cost, _by_step(usages))

    return measure


def _replay(
    conversation: scripted.Conversation,
    measure: Callable[[scripted.Turn], TurnResult],
    log: CallLog,
    keep: list[TurnResult] | None,
) -> None:
    for turn in conversation.turns:
        mark = log.mark()
        measured = measure(turn)
        if keep is not None:
            keep.append(replace(measured, model_seconds=log.busy_seconds(mark)))


def run(args: argparse.Namespace, root: Path, log: TextIO) -> ReplayResult:
    conversations = scripted.load(args.conversations)
    warm_up = scripted.parse(WARM_UP, "warm-up")
    asked = {c.turns[0].normalised for c in conversations}
    if overlap := asked & {c.turns[0].normalised for c in warm_up}:
        raise BenchError(f"warm-up questions also in the replay: {sorted(overlap)}")
    result = ReplayResult(args.replay_scale, args.conversations, conversations)
    environ = {
        "CONCIERGE_CLASSIFY_MODEL": CHEAP.spec,
        "CONCIERGE_CONDENSE_MODEL": CHEAP.spec,
        "CONCIERGE_ANSWER_MODEL": STRONG.spec,
        "CONCIERGE_MODEL_PRICES": PRICES,
    }
    wall, tag = time.perf_counter(), uuid.uuid4().hex[:8]
    ours = result.logs[CONCIERGE]
    with installed(result.scale, ours), sample_runtime(root, environ) as chat:
        result.index_chunks = chat.index_chunks
        warm_log = CallLog()
        naive_ask = _naive_chain(SimulatedModel(STRONG, result.scale, result.logs[NAIVE]))
        warm_ask = _naive_chain(SimulatedModel(STRONG, result.scale, warm_log))
        for conversation in warm_up:
            session = f"warm-{tag}-{conversation.id}"
            _replay(conversation, _concierge(chat, session, False, result), ours, None)
            _replay(conversation, _naive(warm_ask), warm_log, None)
            result.warm_up_turns += len(conversation.turns)
        ours.reset()
        result.steps_missing = 0
        print(f"  replay: warmed up with {result.warm_up_turns} turns per chain", file=log)
        for number, conversation in enumerate(conversations):
            shift = number % len(CHAINS)  # each chain goes first, second and third in turn
            for chain in CHAINS[shift:] + CHAINS[:shift]:
                started = time.perf_counter()
                if chain == NAIVE:
                    _replay(
                        conversation, _naive(naive_ask), result.logs[NAIVE], result.turns[NAIVE]
                    )
                else:
                    session = f"replay-{tag}-{chain == CACHE_OFF}-{conversation.id}"
                    ask = _concierge(chat, session, chain == CACHE_OFF, result)
                    _replay(conversation, ask, ours, result.turns[chain])
                result.chain_seconds[chain] += time.perf_counter() - started
            if (number + 1) % 10 == 0:
                print(f"  replay: {number + 1}/{len(conversations)} conversations", file=log)
    result.wall_seconds = time.perf_counter() - wall
    return result


# -- figures ----------------------------------------------------------------------------------
def _calls(turns: Sequence[TurnResult]) -> float:
    return ratio(sum(t.llm_calls for t in turns), len(turns))


def _cost_1k(turns: Sequence[TurnResult]) -> float:
    return ratio(sum(t.cost_usd for t in turns), len(turns)) * 1000


def _usd(value: float) -> str:
    return "n/a" if math.isnan(value) else f"${value:,.2f}"


def _step(turns: Sequence[TurnResult], step: str, figure: str) -> float:
    return sum(t.steps.get(step, Counter())[figure] for t in turns)


def _same(turns: Sequence[TurnResult], like: Sequence[TurnResult]) -> list[TurnResult]:
    wanted = {(t.turn.conversation, t.turn.number) for t in like}
    return [t for t in turns if (t.turn.conversation, t.turn.number) in wanted]


def _timed(turns: Sequence[TurnResult], scale: float = 1.0) -> Summary:
    """Seconds as measured, or projected to unscaled model latency (the time a model ran
    x 1/scale, the rest as measured)."""
    return Summary.of([t.seconds + t.model_seconds * (1 / scale - 1) for t in turns])


def _follow_ups(turns: Sequence[TurnResult]) -> list[TurnResult]:
    return [t for t in turns if t.turn.is_follow_up]


def _hits(turns: Sequence[TurnResult]) -> str:
    hits = sum(t.cached for t in turns)
    return f"{hits}/{len(turns)} ({ratio(hits, len(turns)):.1%})"


def _latency(result: ReplayResult) -> tuple[list[str], list[list[str]]]:
    ours, off, naive = (result.turns[c] for c in CHAINS)
    hits = [t for t in ours if t.cached]
    groups = {
        "Concierge, follow-ups": _follow_ups(ours),
        "naive, follow-ups": _follow_ups(naive),
        "Concierge, first turns answered": [
            t for t in ours if not t.turn.is_follow_up and not t.cached
        ],
        "Concierge, first turns from the cache": hits,
        "Concierge cache off, the same turns answered in full": _same(off, hits),
        "Concierge cache off, follow-ups": _follow_ups(off),
        "naive, first turns": [t for t in naive if not t.turn.is_follow_up],
        "Concierge, all turns": ours,
        "naive, all turns": naive,
    }
    scaled = result.scale != 1
    headers = ["turns", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "model (ms)"]
    headers += ["projected p50 (ms)", "projected p95 (ms)"] * scaled
    rows = []
    for label, turns in groups.items():
        measured, projected = _timed(turns), _timed(turns, result.scale)
        cells = [measured.p50_ms, measured.p95_ms, measured.mean_ms]
        cells.append(Summary.of([t.model_seconds for t in turns]).mean_ms)
        cells += [projected.p50_ms, projected.p95_ms] * scaled
        rows.append([label, str(measured.n), *(ms(cell, 0) for cell in cells)])
    return headers, rows


def _checks(result: ReplayResult) -> list[str]:
    ours, off, naive = (result.turns[c] for c in CHAINS)
    lines = []
    for label, turns, log in (
        ("Concierge (cache on + cache off)", [*ours, *off], result.logs[CONCIERGE]),
        ("naive", naive, result.logs[NAIVE]),
    ):
        reported = sum(t.llm_calls for t in turns)
        state = "match" if reported == log.total else "**MISMATCH**"
        lines.append(
            f"- {label}: {reported} model calls in the usage records, {log.total} seen by the "
            f"simulated models ({state})."
        )
    repeats = [t for t in ours if t.turn.kind in scripted.REPEATS]
    missed = "; ".join(f"“{t.turn.text}”" for t in repeats if not t.cached) or "none"
    reasked = {
        c: sum(_step([t], "classify", "llm_calls") > 1 for t in result.turns[c]) for c in CHAINS
    }
    lines += [
        f"- Repeats in the mix: {len(repeats)}; served from the cache: "
        f"{sum(t.cached for t in ours)}, of them follow-ups found by their standalone question: "
        f"{sum(t.cached and t.turn.is_follow_up for t in ours)}; repeats that missed: {missed}.",
        f"- Ungrounded answers: Concierge {sum(not t.grounded for t in ours)}, naive "
        f"{sum(not t.grounded for t in naive)} of {len(ours)}.",
        f"- Unlisted categories the simulated model replaced: Concierge "
        f"{result.logs[CONCIERGE].corrected}, naive {result.logs[NAIVE].corrected} calls; "
        f"classify re-asks left: Concierge {reasked[CONCIERGE]}, naive {reasked[NAIVE]} turns.",
    ]
    if result.steps_missing:
        lines.append(f"- {result.steps_missing} Concierge turns missing from the per-step split.")
    return lines


def render(result: ReplayResult) -> str:
    ours, off, naive = chains = tuple(result.turns[c] for c in CHAINS)
    follow = [_timed(_follow_ups(c)) for c in chains]
    cost_ratio = ratio(_cost_1k(ours), _cost_1k(naive))
    follow_ratio = ratio(follow[0].p50_ms, follow[2].p50_ms)
    up = [_timed(_follow_ups(c), result.scale).p50_ms for c in (ours, naive)]
    follow_note = f"; projected to unscaled model latency: {x(ratio(*up))}" * (result.scale != 1)
    met = [
        (
            "cost per question vs naive",
            f"≤ {COST_GOAL:.2f}x",
            f"{x(cost_ratio)} ({_usd(_cost_1k(ours))} vs {_usd(_cost_1k(naive))} per 1,000 questions)",
            cost_ratio <= COST_GOAL,
        ),
        (
            "follow-up p50 vs the sequential chain",
            f"≤ {FOLLOW_UP_GOAL:.2f}x",
            f"{x(follow_ratio)} ({ms(follow[0].p50_ms, 0)} ms vs {ms(follow[2].p50_ms, 0)} ms{follow_note})",
            follow_ratio <= FOLLOW_UP_GOAL,
        ),
        (
            "LLM calls per question, cache on",
            f"≤ {CALLS_GOAL:.1f}",
            f"{_calls(ours):.2f} (cache off: {_calls(off):.2f})",
            _calls(ours) <= CALLS_GOAL,
        ),
    ]
    headline = [
        ["LLM calls per question", *(f"{_calls(c):.2f}" for c in chains)],
        ["cost per 1,000 questions (USD)", *(_usd(_cost_1k(c)) for c in chains)],
        ["cost x naive", *(x(ratio(_cost_1k(c), _cost_1k(naive))) for c in chains)],
        [f"follow-up latency p50 (ms, n={follow[0].n})", *(ms(f.p50_ms, 0) for f in follow)],
        ["follow-up latency p95 (ms)", *(ms(f.p95_ms, 0) for f in follow)],
        ["cache hits, all turns", *(_hits(c) for c in chains)],
        [
            "cache hits, first turns",
            *(_hits([t for t in c if not t.turn.is_follow_up]) for c in chains),
        ],
    ]
    misses = [t for t in ours if not t.cached]
    naive_misses = _same(naive, misses)
    step_rows = [
        [step]
        + [
            cell
            for turns in (naive, ours)
            for cell in (
                f"{ratio(_step(turns, step, 'llm_calls'), len(turns)):.2f}",
                _usd(ratio(_step(turns, step, "cost_usd"), len(turns)) * 1000),
                f"{ratio(_step(turns, step, 'cost_usd'), sum(t.cost_usd for t in turns)):.0%}",
            )
        ]
        for step in STEPS
    ]
    # What the cost goal would need from each lever (arithmetic on this run's records).
    spent, uncached = sum(t.cost_usd for t in ours), sum(t.cost_usd for t in off)
    target = COST_GOAL * sum(t.cost_usd for t in naive)
    answer_cost = _step(ours, "answer", "cost_usd")
    name, spec, price_in, price_out = WHAT_IF
    what_if = _step(ours, "answer", "input_tokens") * price_in / 1000
    what_if += _step(ours, "answer", "output_tokens") * price_out / 1000
    overhead = [
        Summary.of([t.seconds - t.model_seconds for t in c if not t.cached]).mean_ms
        for c in (ours, naive)
    ]
    options = [("--replay-scale", f"{result.scale:g}", f"{SCALE:g}")]
    options.append(("--conversations", result.path, scripted.DEFAULT_PATH))
    return "\n".join(
        [
            reproduce(TITLE, "replay", *options),
            "",
            f"Replay wall time {result.wall_seconds:.0f} s ("
            + ", ".join(f"{c} {result.chain_seconds[c]:.0f} s" for c in CHAINS)
            + f") after {result.warm_up_turns} warm-up turns per chain; model latencies scaled "
            f"by **{result.scale:g}**; sample index {result.index_chunks} chunks; mean time "
            f"outside model calls per answered turn: Concierge {ms(overhead[0], 0)} ms, naive "
            f"{ms(overhead[1], 0)} ms.",
            "",
            scripted.mix(result.conversations),
            "",
            goals(*met),
            "",
            f"### Calls, cost, follow-up latency and cache hits ({len(ours)} questions each)",
            "",
            table(["", *CHAINS], headline),
            "",
            f"- The {len(misses)} turns Concierge did not serve from the cache, in both chains: "
            f"{_calls(misses):.2f} vs {_calls(naive_misses):.2f} calls, {_usd(_cost_1k(misses))} "
            f"vs {_usd(_cost_1k(naive_misses))} per 1,000 questions "
            f"({x(ratio(_cost_1k(misses), _cost_1k(naive_misses)))}).",
            f"- Cost goal, cache: the cache saved {1 - ratio(spent, uncached):.0%} of the cache-off "
            f"cost; the goal needs {1 - ratio(target, uncached):.0%} with this routing.",
            f"- Cost goal, answer model: the answer step is {ratio(answer_cost, spent):.0%} of "
            f"Concierge's cost; the goal needs an answer model at most "
            f"{ratio(target - (spent - answer_cost), answer_cost):.2f}x the strong model's price. "
            f"At {name} list price (`{spec}`, {ratio(price_in, STRONG.input_usd_per_1k):.2f}x) "
            f"the same tokens cost {x(ratio(spent - answer_cost + what_if, sum(t.cost_usd for t in naive)))} naive.",
            "",
            "Per step, per question (calls, cost per 1,000 questions, share of the chain's cost):",
            "",
            table(
                [
                    "step",
                    *(f"{c} {f}" for c in (NAIVE, CONCIERGE) for f in ("calls", "cost", "share")),
                ],
                step_rows,
            ),
            "",
            "### Latency by kind of turn",
            "",
            table(*_latency(result)),
            "",
            "### Checks",
            "",
            *_checks(result),
        ]
    )
