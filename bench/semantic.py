"""False hits of the semantic cache tier for each embedder: how similar questions that need
different answers score, against paraphrases, at every threshold."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bench.figures import Summary, ms, percentile, reproduce, table

TITLE = "Semantic cache tier: false hits before any threshold"
PAIRS_PATH = Path("bench") / "semantic_pairs.jsonl"
PARAPHRASE = "paraphrase"
FALSE_KINDS = ("negation", "swapped_entity", "different_quantity_or_detail")
KINDS = (PARAPHRASE, *FALSE_KINDS)
LANGUAGES = ("en", "es", "de")
THRESHOLDS = tuple(round(0.70 + 0.01 * step, 2) for step in range(29))  # 0.70 .. 0.98
REPORTED = tuple(t for t in THRESHOLDS if t >= 0.90 or round(t * 100) % 2 == 0)
USEFUL_HIT_RATE = 0.5  # paraphrase hits at the lowest threshold without a false hit
WARM_UP = (
    "Do you sell hiking poles?",
    "¿Tenéis tienda en Madrid?",
    "Habt ihr Gutscheine für Kinder?",
)


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    language: str
    kind: str
    same_answer: bool


@dataclass
class Measured:
    """One embedder: a cosine per pair (file order), a time per distinct question."""

    spec: str
    pairs: list[Pair]
    cosines: list[float] = field(default_factory=list)
    embed_seconds: list[float] = field(default_factory=list)
    dimensions: int = 0
    error: str | None = None  # why it could not be measured (credentials, model access, …)

    def scores(self, kinds: tuple[str, ...], language: str | None = None) -> list[float]:
        return [
            score
            for pair, score in zip(self.pairs, self.cosines, strict=True)
            if pair.kind in kinds and language in (None, pair.language)
        ]

    def hits(self, threshold: float, kinds: tuple[str, ...], language: str | None = None) -> str:
        scores = self.scores(kinds, language)
        hits = sum(score >= threshold for score in scores)
        return f"{hits}/{len(scores)} ({hits / len(scores):.0%})" if scores else "-"

    def lowest_safe(self, language: str | None = None) -> float | None:
        """The lowest threshold examined with no false hit (None: even 0.98 has one)."""
        wrong = self.scores(FALSE_KINDS, language)
        return next((t for t in THRESHOLDS if all(s < t for s in wrong)), None)


@dataclass
class SemanticResult:
    pairs: list[Pair]
    measured: list[Measured]
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--semantic-model",
        action="append",
        default=[],
        metavar="SPEC",
        help="semantic: also measure this embedder, e.g. bedrock:amazon.titan-embed-text-v2:0 "
        "(calls Bedrock with your credentials, once per question; repeatable; `offline` is "
        "always measured)",
    )


def _load_pairs(path: Path) -> list[Pair]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            pair = Pair(**json.loads(line))
            if pair.kind not in KINDS or pair.language not in LANGUAGES:
                raise ValueError(f"{path}:{number}: unknown kind or language: {line}")
            if pair.same_answer is not (pair.kind == PARAPHRASE):
                raise ValueError(f"{path}:{number}: only paraphrases share an answer: {line}")
            pairs.append(pair)
    return pairs


def _measure(spec: str, pairs: list[Pair]) -> Measured:
    from concierge import wiring
    from concierge.adapters.embeddings.port import cosine
    from concierge.adapters.embeddings.registry import embedder_for
    from concierge.errors import ConciergeError

    result = Measured(spec=spec, pairs=pairs)
    vectors: dict[str, list[float]] = {}
    try:
        embedder = embedder_for(spec, wiring.aws_client)
        embedder.embed(list(WARM_UP))
        for text in dict.fromkeys(text for pair in pairs for text in (pair.a, pair.b)):
            started = time.perf_counter()
            (vectors[text],) = embedder.embed([text])  # alone, as the chain's lookup does
            result.embed_seconds.append(time.perf_counter() - started)
    except ConciergeError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    result.dimensions = len(next(iter(vectors.values())))
    result.cosines = [cosine(vectors[pair.a], vectors[pair.b]) for pair in pairs]
    return result


def run(args: argparse.Namespace, root: Path, log: TextIO) -> SemanticResult:
    from concierge.adapters.embeddings.offline import OFFLINE_SPEC

    pairs = _load_pairs(root / PAIRS_PATH)
    specs = dict.fromkeys([OFFLINE_SPEC, *args.semantic_model])
    result = SemanticResult(pairs, [_measure(spec, pairs) for spec in specs])
    result.errors = [f"{m.spec} not measured: {m.error}" for m in result.measured if m.error]
    return result


def _distribution(scores: list[float]) -> list[str]:
    quartiles = (percentile(scores, q) for q in (0.25, 0.5, 0.75))
    return [str(len(scores)), *(f"{v:.3f}" for v in (min(scores), *quartiles, max(scores)))]


def _safe_line(measured: Measured, label: str, language: str | None) -> str:
    safe = measured.lowest_safe(language)
    worst = max(measured.scores(FALSE_KINDS, language))
    if safe is None:
        return f"- {label}: none up to {THRESHOLDS[-1]:.2f} (highest wrong pair: {worst:.3f})"
    n = len(measured.scores(FALSE_KINDS, language))
    return (
        f"- {label}: **{safe:.2f}** (highest wrong pair: {worst:.3f}); paraphrase hits there: "
        f"**{measured.hits(safe, (PARAPHRASE,), language)}**; no false hit in {n} pairs allows "
        f"up to about {3 / n:.0%} (95%, rule of three)"
    )


def _section(measured: Measured) -> list[str]:
    if measured.error is not None:
        return [f"### `{measured.spec}`", "", f"Not measured: {measured.error}"]
    timing = Summary.of(measured.embed_seconds)
    best = {lang: max(measured.scores((PARAPHRASE,), lang)) for lang in LANGUAGES}
    worst = {lang: max(measured.scores(FALSE_KINDS, lang)) for lang in LANGUAGES}
    thresholds = [
        [
            f"{t:.2f}",
            measured.hits(t, FALSE_KINDS),
            *(measured.hits(t, (kind,)) for kind in FALSE_KINDS),
            measured.hits(t, (PARAPHRASE,)),
        ]
        for t in REPORTED
    ]
    wrong = sorted(
        (
            (score, pair)
            for pair, score in zip(measured.pairs, measured.cosines, strict=True)
            if not pair.same_answer
        ),
        key=lambda item: -item[0],
    )
    closest = [[f"{s:.3f}", p.language, f"`{p.kind}`", p.a, p.b] for s, p in wrong[:8]]
    safe = measured.lowest_safe()
    paraphrases = measured.scores((PARAPHRASE,))
    useful = safe is not None and sum(s >= safe for s in paraphrases) >= USEFUL_HIT_RATE * len(
        paraphrases
    )
    above = measured.hits(max(paraphrases), FALSE_KINDS)
    return [
        f"### `{measured.spec}` ({measured.dimensions} dimensions)",
        "",
        f"Embedding one question: p50 **{ms(timing.p50_ms, 3)} ms**, p95 {ms(timing.p95_ms, 3)} "
        f"ms, max {ms(timing.max_ms, 3)} ms ({timing.n} questions).",
        "",
        table(
            ["pairs", "n", "min", "p25", "median", "p75", "max"],
            [[f"`{kind}`", *_distribution(measured.scores((kind,)))] for kind in KINDS],
        ),
        "",
        "Best paraphrase / highest pair with a different answer, per language: "
        + ", ".join(f"{lang} {best[lang]:.3f} / {worst[lang]:.3f}" for lang in LANGUAGES)
        + ".",
        "",
        table(
            ["threshold", "false hits, all", *FALSE_KINDS, "paraphrase hits"],
            thresholds,
        ),
        "",
        "Lowest threshold without a false hit (0.01 steps from 0.70 to 0.98):",
        "",
        _safe_line(measured, "all languages", None),
        *(_safe_line(measured, f"`{language}` only", language) for language in LANGUAGES),
        "",
        f"**Useful threshold (paraphrase hits ≥ {USEFUL_HIT_RATE:.0%} without a false hit): "
        f"{'yes' if useful else 'no'}.** The best paraphrase ({max(paraphrases):.3f}) scores "
        f"below {above} of the pairs with different answers.",
        "",
        table(["cosine", "lang", "kind", "a", "b"], closest, "rllll"),
    ]


def render(result: SemanticResult) -> str:
    options = [("--semantic-model", m.spec, "offline") for m in result.measured]
    parts = [
        reproduce(TITLE, "semantic", *options),
        "",
        f"{len(result.pairs)} pairs, "
        f"{len({text for pair in result.pairs for text in (pair.a, pair.b)})} distinct questions.",
    ]
    for measured in result.measured:
        parts += ["", *_section(measured)]
    return "\n".join(parts)
