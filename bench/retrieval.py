"""Retrieval quality of the local index on the sample knowledge base, and its search and load
time on a generated 10,000-chunk index."""

from __future__ import annotations

import argparse
import gc
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Summary, goals, median, ms, reproduce, table

TITLE = "Retrieval quality and speed"
KINDS = ("direct", "paraphrase", "cross-language")
LANGUAGES = ("en", "es", "de")
CHAIN, NO_FILTER = "chain filter", "no filter"
MODES = (CHAIN, NO_FILTER)
RANKED = 10  # passages asked for when scoring quality (recall@1, recall@5, MRR@10)
SPEED_LIMIT = 5  # passages asked for when timing
SIZE, SEED, ROUNDS, LOADS = 10_000, 20_261_122, 5, 3
RECALL_GOAL = 0.9  # recall@5 with the chain's filter
P50_GOAL_MS = 5.0  # p50 search latency on the 10k-chunk index, chain's filter


@dataclass(frozen=True)
class Outcome:
    question: str
    language: str
    kind: str
    expected: str
    # 1-based rank of the first passage of the expected document within RANKED, per mode.
    ranks: dict[str, int | None]
    filter_used: str  # which of the chain's filters returned the passages


@dataclass
class RetrievalResult:
    outcomes: list[Outcome] = field(default_factory=list)
    sample_chunks: int = 0
    sample_documents: int = 0
    synthetic_chunks: int = 0
    synthetic_bytes: int = 0
    synthetic_terms: int = 0
    load_seconds: list[float] = field(default_factory=list)
    query_seconds: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    relaxed_on_big_index: int = 0
    rounds: int = ROUNDS

    def scores(
        self, mode: str, kind: str | None = None, language: str | None = None
    ) -> list[float]:
        """n, recall@1, recall@5 and MRR of the questions of `kind` and `language`."""
        ranks = [
            o.ranks[mode] or 0
            for o in self.outcomes
            if kind in (None, o.kind) and language in (None, o.language)
        ]
        n = len(ranks) or 1
        return [
            len(ranks),
            sum(0 < r <= 1 for r in ranks) / n,
            sum(0 < r <= 5 for r in ranks) / n,
            sum(1 / r for r in ranks if r) / n,
        ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retrieval-rounds",
        type=int,
        default=ROUNDS,
        help=f"retrieval: timed rounds of every question on the 10k-chunk index (default {ROUNDS})",
    )


def _rank(passages: list[Any], source: str) -> int | None:
    return next((n for n, p in enumerate(passages, start=1) if p.source == source), None)


def synthetic_index(base: Any, size: int, seed: int) -> Any:
    """The sample's chunks, then made-up ones until there are `size`: each copies the category,
    language and sentence count of a sample chunk drawn at random, with sentences drawn from
    that category and language under one of their headings."""
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
        body = " ".join(rng.choice(pools[key]) for _ in range(count))
        heading = rng.choice(headings[key] or titles[key])
        chunks.append(
            Chunk(
                source=f"synthetic-{key[1]}-{len(chunks):05d}.md",
                title=rng.choice(titles[key]),
                text=f"## {heading}\n{body}",
                category=key[0],
                language=key[1],
            )
        )
    return IndexFile(kb_version=f"synthetic-{seed}", chunks=chunks)


def run(args: argparse.Namespace, root: Path, log: TextIO) -> RetrievalResult:
    from concierge.adapters.retrieval.local_index import LocalIndex, load_index, write_index
    from concierge.adapters.retrieval.port import SearchFilter
    from concierge.models.state import RetrieveInput
    from concierge.steps.retrieve import retrieve
    from concierge.text import terms
    from concierge_cli.ingestion import build_index

    result = RetrievalResult(rounds=args.retrieval_rounds)
    lines = (root / "knowledge" / "sample" / "qa.jsonl").read_text("utf-8").splitlines()
    questions = [json.loads(line) for line in lines if line.strip()]
    sample = build_index([root / "knowledge" / "sample"])
    categories = {chunk.source: chunk.category for chunk in sample.chunks}
    if missing := {q["expected_source"] for q in questions} - categories.keys():
        raise ValueError(f"qa.jsonl names documents the sample does not have: {sorted(missing)}")
    result.sample_chunks, result.sample_documents = len(sample.chunks), len(categories)
    requests = [
        RetrieveInput(
            request_id="bench",
            question=q["question"],
            category=categories[q["expected_source"]],
            language=q["language"],
            deadline_ms=2**62,
        )
        for q in questions
    ]
    index = LocalIndex(sample)
    for q, request in zip(questions, requests, strict=True):
        chained = retrieve(request, index, RANKED)
        unfiltered = index.search(q["question"], SearchFilter(), RANKED)
        ranks = {
            CHAIN: _rank(chained.passages, q["expected_source"]),
            NO_FILTER: _rank(unfiltered, q["expected_source"]),
        }
        result.outcomes.append(
            Outcome(
                q["question"],
                q["language"],
                q.get("kind", "direct"),
                q["expected_source"],
                ranks,
                chained.filter_used,
            )
        )

    big = synthetic_index(sample, SIZE, SEED)
    result.synthetic_chunks = len(big.chunks)
    result.synthetic_terms = len({term for chunk in big.chunks for term in terms(chunk.text)})
    with tempfile.TemporaryDirectory(prefix="concierge-bench-") as work:
        path = Path(work) / "index.json"
        write_index(big, path)
        del big
        result.synthetic_bytes = path.stat().st_size
        print(f"  retrieval: loading a {SIZE:,}-chunk index {LOADS} times", file=log)
        for _ in range(LOADS):
            index = None
            gc.collect()
            started = time.perf_counter()
            index = load_index(str(path))
            result.load_seconds.append(time.perf_counter() - started)
    gc.collect()
    everything, clock = SearchFilter(), time.perf_counter
    for number in range(args.retrieval_rounds + 1):  # round 0 warms up
        for q, request in zip(questions, requests, strict=True):
            for mode in MODES if number % 2 else MODES[::-1]:
                started = clock()
                if mode == CHAIN:
                    found = retrieve(request, index, SPEED_LIMIT)
                else:
                    index.search(q["question"], everything, SPEED_LIMIT)
                elapsed = clock() - started
                if number:
                    result.query_seconds[mode].append(elapsed)
                elif mode == CHAIN:
                    result.relaxed_on_big_index += found.filter_used != "category+language"
    return result


def render(result: RetrievalResult) -> str:
    groups = [("all questions", None, None)]
    groups += [(f"language `{language}`", None, language) for language in LANGUAGES]
    groups += [(f"kind `{kind}`", kind, None) for kind in KINDS]
    rows = []
    for label, kind, language in groups:
        n, *chain = result.scores(CHAIN, kind, language)
        _, *bare = result.scores(NO_FILTER, kind, language)
        rows.append([label, str(n), *(f"{value:.2f}" for value in (*chain, *bare))])
    recall, recall_bare = result.scores(CHAIN)[2], result.scores(NO_FILTER)[2]
    speed = {mode: Summary.of(result.query_seconds[mode]) for mode in MODES}
    speed_rows = [
        [f"`{mode}`", str(s.n), *(ms(v, 2) for v in (s.p50_ms, s.p95_ms, s.mean_ms, s.max_ms))]
        for mode, s in speed.items()
    ]
    used = Counter(outcome.filter_used for outcome in result.outcomes)
    misses = [
        [
            o.question,
            o.language,
            o.kind,
            f"`{o.expected}`",
            str(o.ranks[CHAIN] or "-"),
            str(o.ranks[NO_FILTER] or "-"),
        ]
        for o in result.outcomes
        if not o.ranks[CHAIN] or o.ranks[CHAIN] > 5
    ]
    metrics = ["R@1", "R@5", "MRR"]
    return "\n".join(
        [
            reproduce(TITLE, "retrieval", ("--retrieval-rounds", result.rounds, ROUNDS)),
            "",
            goals(
                (
                    "recall@5, chain filter",
                    f"≥ {RECALL_GOAL:.2f}",
                    f"{recall:.2f} (no filter: {recall_bare:.2f})",
                    recall >= RECALL_GOAL,
                ),
                (
                    f"p50 search latency, {result.synthetic_chunks:,}-chunk index, chain filter",
                    f"≤ {P50_GOAL_MS:g} ms",
                    f"{ms(speed[CHAIN].p50_ms, 2)} ms (no filter: {ms(speed[NO_FILTER].p50_ms, 2)} ms)",
                    speed[CHAIN].p50_ms <= P50_GOAL_MS,
                ),
            ),
            "",
            f"### Quality on the sample ({result.sample_documents} documents, "
            f"{result.sample_chunks} chunks)",
            "",
            table(
                [
                    "questions",
                    "n",
                    *(f"{m} chain filter" for m in metrics),
                    *(f"{m} no filter" for m in metrics),
                ],
                rows,
            ),
            "",
            "Filter that answered with the chain's ladder: "
            + ", ".join(
                f"`{name}` {used[name]}" for name in ("category+language", "language", "none")
            )
            + ".",
            "",
            f"Expected document not in the chain's top 5 ({len(misses)} questions; rank within "
            f"the first {RANKED}, `-` = not there):",
            "",
            table(
                ["question", "lang", "kind", "expected", "rank, chain filter", "rank, no filter"],
                misses,
                "llllrr",
            )
            if misses
            else "none.",
            "",
            f"### Speed on a generated {result.synthetic_chunks:,}-chunk index",
            "",
            f"Index: {result.synthetic_chunks:,} chunks ({result.sample_chunks} from the sample, "
            f"seed {SEED}), {result.synthetic_terms:,} distinct terms, "
            f"{result.synthetic_bytes / 1e6:.1f} MB of JSON. **`load_index`: median "
            f"{ms(median(result.load_seconds) * 1000, 0)} ms** ("
            + ", ".join(ms(s * 1000, 0) for s in result.load_seconds)
            + f" ms). The chain's filter was relaxed for {result.relaxed_on_big_index} questions "
            f"on this index.",
            "",
            table(["search", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "max (ms)"], speed_rows),
        ]
    )
