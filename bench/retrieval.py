"""Retrieval quality and speed of the embedded local index (issue #4).

Quality: every question of knowledge/sample/qa.jsonl is searched in the sample index twice.

* chain filter  what the retrieve step does: category of the expected document + language of
                the question, relaxed to language only, then to no filter, when nothing matches
                (`concierge.steps.retrieve.retrieve`, called as the Lambda calls it);
* no filter     the whole index.

A question is a hit at k when a passage of its expected document is among the first k
passages (document level). MRR is the mean of 1/rank of the first such passage within the
first 10 passages (0 when there is none).

Speed: a 10,000-chunk index is generated at bench time, deterministically (fixed seed), by
recombining sentences of the sample knowledge base (nothing is downloaded or committed). It is
written with `write_index` and read back with `load_index` (timed: JSON parse, validation and
whatever the index builds at load), then every question is searched in rounds, with the chain
filter and with none; each search is timed with `time.perf_counter()`.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.stats import Summary, median

QA_PATH = Path("knowledge") / "sample" / "qa.jsonl"
KINDS = ("direct", "paraphrase", "cross-language")
LANGUAGES = ("en", "es", "de")
CHAIN, NO_FILTER = "chain filter", "no filter"
MODES = (CHAIN, NO_FILTER)
RANKED = 10  # passages asked for when scoring quality (recall@1, recall@5, MRR@10)
SPEED_LIMIT = 5  # passages asked for when timing (the chain asks for CONCIERGE_TOP_K, 4)
SYNTHETIC_SIZE = 10_000
SEED = 20_261_122
ROUNDS = 5
LOADS = 3
RECALL_GOAL = 0.9  # recall@5 with the chain's filter
P50_GOAL_MS = 5.0  # p50 query latency on the 10k-chunk index


@dataclass(frozen=True)
class QA:
    question: str
    language: str
    expected_source: str
    kind: str


def load_qa(path: Path) -> list[QA]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            records.append(
                QA(
                    question=str(record["question"]),
                    language=str(record["language"]),
                    expected_source=str(record["expected_source"]),
                    kind=str(record.get("kind", "direct")),
                )
            )
    return records


@dataclass(frozen=True)
class Outcome:
    qa: QA
    # 1-based rank of the first passage from the expected document, None when not in the top 10.
    ranks: dict[str, int | None]
    filter_used: str  # which of the chain's filters returned the passages


@dataclass(frozen=True)
class Scores:
    n: int
    recall_at_1: float
    recall_at_5: float
    mrr: float

    @classmethod
    def of(cls, ranks: Sequence[int | None]) -> Scores:
        n = len(ranks)
        if not n:
            return cls(0, float("nan"), float("nan"), float("nan"))
        return cls(
            n=n,
            recall_at_1=sum(1 for r in ranks if r is not None and r <= 1) / n,
            recall_at_5=sum(1 for r in ranks if r is not None and r <= 5) / n,
            mrr=sum(1 / r for r in ranks if r is not None) / n,
        )


@dataclass
class RetrievalResult:
    outcomes: list[Outcome] = field(default_factory=list)
    sample_chunks: int = 0
    sample_documents: int = 0
    synthetic_chunks: int = 0
    synthetic_bytes: int = 0
    synthetic_terms: int = 0  # distinct terms (`concierge.text.terms`) of its chunk texts
    synthetic_seconds: float = 0.0  # generating the synthetic index (not part of the product)
    load_seconds: list[float] = field(default_factory=list)
    query_seconds: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    relaxed_on_big_index: int = 0
    rounds: int = 0
    seed: int = SEED

    def scores(self, mode: str, kind: str | None = None, language: str | None = None) -> Scores:
        return Scores.of(
            [
                outcome.ranks[mode]
                for outcome in self.outcomes
                if kind in (None, outcome.qa.kind) and language in (None, outcome.qa.language)
            ]
        )

    def query_summary(self, mode: str) -> Summary:
        return Summary.of(self.query_seconds[mode])

    @property
    def load_ms(self) -> float:
        return median(self.load_seconds) * 1000

    def filters_used(self) -> Counter[str]:
        return Counter(outcome.filter_used for outcome in self.outcomes)


def rank_of(passages: Sequence[Any], source: str) -> int | None:
    for position, passage in enumerate(passages, start=1):
        if passage.source == source:
            return position
    return None


def _retrieve_input(qa: QA, category: str) -> Any:
    from concierge.models.state import RetrieveInput

    return RetrieveInput(
        request_id="bench",
        question=qa.question,
        category=category,
        language=qa.language,
        deadline_ms=2**62,
    )


def evaluate(index: Any, questions: Sequence[QA], categories: dict[str, str]) -> list[Outcome]:
    """Rank every question with the chain's filter ladder and without a filter."""
    from concierge.adapters.retrieval.port import SearchFilter
    from concierge.steps.retrieve import retrieve

    outcomes = []
    for qa in questions:
        retrieval = retrieve(_retrieve_input(qa, categories[qa.expected_source]), index, RANKED)
        unfiltered = index.search(qa.question, SearchFilter(), RANKED)
        outcomes.append(
            Outcome(
                qa=qa,
                ranks={
                    CHAIN: rank_of(retrieval.passages, qa.expected_source),
                    NO_FILTER: rank_of(unfiltered, qa.expected_source),
                },
                filter_used=retrieval.filter_used,
            )
        )
    return outcomes


def synthetic_index(base: Any, size: int, seed: int) -> Any:
    """`size` chunks: the sample's own, then made-up ones until there are `size`.

    Each made-up chunk copies the category, language and sentence count of a sample chunk
    drawn at random, and is filled with sentences drawn at random from all sample chunks of
    that category and language, under one of their `##` headings. So it reads like the
    knowledge base, with its vocabulary and its length distribution, but answers nothing.
    """
    from concierge.knowledge import Chunk, IndexFile
    from concierge.text import sentences

    rng = random.Random(seed)
    pools: dict[tuple[str, str], list[str]] = {}
    headings: dict[tuple[str, str], list[str]] = {}
    titles: dict[tuple[str, str], list[str]] = {}
    lengths: list[tuple[tuple[str, str], int]] = []
    for chunk in base.chunks:
        key = (chunk.category, chunk.language)
        units = sentences(chunk.text)
        pools.setdefault(key, []).extend(units)
        titles.setdefault(key, []).append(chunk.title)
        headings.setdefault(key, []).extend(
            line.lstrip("#").strip() for line in chunk.text.splitlines() if line.startswith("#")
        )
        lengths.append((key, max(1, len(units))))
    chunks = list(base.chunks)
    while len(chunks) < size:
        key, count = rng.choice(lengths)
        category, language = key
        body = " ".join(rng.choice(pools[key]) for _ in range(count))
        heading = rng.choice(headings[key]) if headings[key] else rng.choice(titles[key])
        chunks.append(
            Chunk(
                source=f"synthetic-{language}-{len(chunks):05d}.md",
                title=rng.choice(titles[key]),
                text=f"## {heading}\n{body}",
                category=category,
                language=language,
            )
        )
    return IndexFile(kb_version=f"synthetic-{seed}", chunks=chunks)


def time_queries(
    index: Any, questions: Sequence[QA], categories: dict[str, str], rounds: int
) -> tuple[dict[str, list[float]], int]:
    """Per-search seconds for each mode; the order of modes alternates from round to round."""
    from concierge.adapters.retrieval.port import SearchFilter
    from concierge.steps.retrieve import retrieve

    requests = [_retrieve_input(qa, categories[qa.expected_source]) for qa in questions]
    everything = SearchFilter()
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    relaxed = 0
    clock = time.perf_counter
    for number in range(rounds + 1):  # round 0 warms up and is not recorded
        order = MODES if number % 2 else MODES[::-1]
        for qa, request in zip(questions, requests, strict=True):
            for mode in order:
                if mode == CHAIN:
                    started = clock()
                    retrieval = retrieve(request, index, SPEED_LIMIT)
                    elapsed = clock() - started
                    if number == 0 and retrieval.filter_used != "category+language":
                        relaxed += 1
                else:
                    started = clock()
                    index.search(qa.question, everything, SPEED_LIMIT)
                    elapsed = clock() - started
                if number:
                    samples[mode].append(elapsed)
    return samples, relaxed


def run(
    root: Path,
    rounds: int = ROUNDS,
    size: int = SYNTHETIC_SIZE,
    seed: int = SEED,
    log: TextIO = sys.stderr,
) -> RetrievalResult:
    from concierge.adapters.retrieval.local_index import LocalIndex, load_index, write_index
    from concierge.text import terms
    from concierge_cli.ingestion import build_index

    result = RetrievalResult(rounds=rounds, seed=seed)
    questions = load_qa(root / QA_PATH)
    sample = build_index([root / "knowledge" / "sample"])
    categories = {chunk.source: chunk.category for chunk in sample.chunks}
    missing = sorted({qa.expected_source for qa in questions} - categories.keys())
    if missing:
        raise ValueError(f"qa.jsonl names documents the sample does not have: {missing}")
    result.sample_chunks = len(sample.chunks)
    result.sample_documents = len(categories)

    print(f"bench: retrieval quality, {len(questions)} questions ...", file=log)
    result.outcomes = evaluate(LocalIndex(sample), questions, categories)

    started = time.perf_counter()
    big = synthetic_index(sample, size, seed)
    result.synthetic_seconds = time.perf_counter() - started
    result.synthetic_chunks = len(big.chunks)
    result.synthetic_terms = len({term for chunk in big.chunks for term in terms(chunk.text)})
    with tempfile.TemporaryDirectory(prefix="concierge-bench-") as work:
        path = Path(work) / "index.json"
        write_index(big, path)
        del big
        result.synthetic_bytes = path.stat().st_size
        print(f"bench: loading a {size:,}-chunk index {LOADS} times ...", file=log)
        index = None
        for _ in range(LOADS):
            index = None
            gc.collect()
            started = time.perf_counter()
            index = load_index(str(path))
            result.load_seconds.append(time.perf_counter() - started)
    assert index is not None
    print(f"bench: {rounds} rounds of {len(questions)} questions x {MODES} ...", file=log)
    gc.collect()
    result.query_seconds, result.relaxed_on_big_index = time_queries(
        index, questions, categories, rounds
    )
    return result
