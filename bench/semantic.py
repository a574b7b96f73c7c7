"""False hits of the semantic cache tier, measured before any threshold is recommended (#5).

The semantic tier would serve the cached answer of an earlier question whose vector is at
least `threshold` similar to the new one (same language and knowledge-base version only). Its
risk is a false hit: serving an answer to a question that only looks like the one asked.

`bench/semantic_pairs.jsonl` holds question pairs written for this benchmark, one JSON object a
line: `a`, `b`, `language`, `kind`, `same_answer`. Kinds:

* paraphrase                    same question in other words (same_answer true);
* negation                      "Can I return sale items?" / "Which items can't I return?";
* swapped_entity                another country, product or shop ("to Austria" / "to Spain");
* different_quantity_or_detail  another amount, time, size or variant ("€60" / "€120").

Every distinct question is embedded once, on its own (as the chain's lookup does), timed with
`time.perf_counter()` after a few warm-up questions that are not in the set. For every
threshold the report gives the false-hit rate (pairs with a different answer at or above it)
and the paraphrase hit rate, overall and per language, and the lowest threshold with no false
hit.

Only the `offline` embedder runs by default (`make bench`). A Bedrock embedder is measured only
when named explicitly (`--semantic-model bedrock:<model id>`): it calls Bedrock with the
caller's credentials, once per distinct question.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import Summary, percentile
from concierge.adapters.embeddings.offline import OFFLINE_SPEC
from concierge.adapters.embeddings.port import cosine
from concierge.adapters.embeddings.registry import embedder_for
from concierge.errors import ConciergeError

PAIRS_PATH = Path("bench") / "semantic_pairs.jsonl"
PARAPHRASE = "paraphrase"
FALSE_KINDS = ("negation", "swapped_entity", "different_quantity_or_detail")
KINDS = (PARAPHRASE, *FALSE_KINDS)
LANGUAGES = ("en", "es", "de")
# Every threshold examined (0.01 steps); the report shows the coarser REPORTED rows plus the
# lowest threshold without a false hit.
THRESHOLDS = tuple(round(0.70 + 0.01 * step, 2) for step in range(29))
REPORTED = tuple(t for t in THRESHOLDS if t >= 0.90 or round(t * 100) % 2 == 0)
# Below this paraphrase hit rate at its safe threshold, a tier is not worth an embedding call
# on every exact miss: the report calls such an embedder "no useful threshold".
USEFUL_HIT_RATE = 0.5
# Embedded before timing starts (not in the pair set, not scored).
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


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        pair = Pair(
            a=str(record["a"]),
            b=str(record["b"]),
            language=str(record["language"]),
            kind=str(record["kind"]),
            same_answer=record["same_answer"],
        )
        if pair.kind not in KINDS or pair.language not in LANGUAGES:
            raise ValueError(f"{path}:{number}: unknown kind or language: {line}")
        if pair.same_answer is not (pair.kind == PARAPHRASE):
            raise ValueError(f"{path}:{number}: only paraphrases share an answer: {line}")
        pairs.append(pair)
    return pairs


@dataclass(frozen=True)
class Rate:
    hits: int
    n: int

    @property
    def rate(self) -> float:
        return self.hits / self.n if self.n else float("nan")


@dataclass
class Measured:
    """One embedder over every pair: a cosine per pair (file order), a time per question."""

    spec: str
    pairs: list[Pair]
    cosines: list[float] = field(default_factory=list)
    embed_seconds: list[float] = field(default_factory=list)
    dimensions: int = 0
    # Set when the embedder could not be measured (no credentials, no model access, …).
    error: str | None = None

    def _scored(self, language: str | None, kinds: Iterable[str]) -> list[float]:
        wanted = set(kinds)
        return [
            score
            for pair, score in zip(self.pairs, self.cosines, strict=True)
            if pair.kind in wanted and language in (None, pair.language)
        ]

    def false_hits(
        self, threshold: float, language: str | None = None, kind: str | None = None
    ) -> Rate:
        """Pairs with different answers at or above `threshold`."""
        scores = self._scored(language, [kind] if kind else FALSE_KINDS)
        return Rate(sum(score >= threshold for score in scores), len(scores))

    def paraphrase_hits(self, threshold: float, language: str | None = None) -> Rate:
        scores = self._scored(language, [PARAPHRASE])
        return Rate(sum(score >= threshold for score in scores), len(scores))

    def lowest_safe(self, language: str | None = None) -> float | None:
        """The lowest examined threshold with no false hit, None when even 0.98 has one."""
        for threshold in THRESHOLDS:
            if self.false_hits(threshold, language).hits == 0:
                return threshold
        return None

    def distribution(self, kind: str, language: str | None = None) -> list[float]:
        """n, min, p25, median, p75, max of the cosines of one kind."""
        scores = self._scored(language, [kind])
        if not scores:
            return []
        quartiles = [percentile(scores, q) for q in (0.25, 0.5, 0.75)]
        return [len(scores), min(scores), *quartiles, max(scores)]

    def closest_false(self, count: int) -> list[tuple[float, Pair]]:
        """The pairs with different answers that score highest."""
        ranked = [
            (score, pair)
            for pair, score in zip(self.pairs, self.cosines, strict=True)
            if not pair.same_answer
        ]
        return sorted(ranked, key=lambda item: -item[0])[:count]

    def embed_summary(self) -> Summary:
        return Summary.of(self.embed_seconds)

    def useful(self) -> bool:
        safe = self.lowest_safe()
        return safe is not None and self.paraphrase_hits(safe).rate >= USEFUL_HIT_RATE


@dataclass
class SemanticResult:
    pairs: list[Pair]
    measured: list[Measured]

    def questions(self) -> int:
        return len({text for pair in self.pairs for text in (pair.a, pair.b)})

    def count(self, kind: str, language: str | None = None) -> int:
        return sum(p.kind == kind and language in (None, p.language) for p in self.pairs)


def measure(spec: str, pairs: list[Pair]) -> Measured:
    result = Measured(spec=spec, pairs=pairs)
    try:
        embedder = embedder_for(spec)
        embedder.embed(list(WARM_UP))
        vectors: dict[str, list[float]] = {}
        for text in dict.fromkeys(text for pair in pairs for text in (pair.a, pair.b)):
            started = time.perf_counter()
            (vectors[text],) = embedder.embed([text])
            result.embed_seconds.append(time.perf_counter() - started)
    except ConciergeError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.embed_seconds.clear()
        return result
    result.dimensions = len(next(iter(vectors.values())))
    result.cosines = [cosine(vectors[pair.a], vectors[pair.b]) for pair in pairs]
    return result


def run(root: Path, models: Sequence[str] = ()) -> SemanticResult:
    """The offline embedder, then each of `models` named explicitly (never by default)."""
    pairs = load_pairs(root / PAIRS_PATH)
    specs = list(dict.fromkeys([OFFLINE_SPEC, *models]))
    return SemanticResult(pairs=pairs, measured=[measure(spec, pairs) for spec in specs])
