"""Retrieval quality of the local index, lexical, dense and fused, on the sample knowledge base
and on the Lodestar corpus (when it is there); its search and load time and size on a generated
10,000-chunk index with vectors; and the dense model's cold load."""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Summary, goals, median, ms, reproduce, table

TITLE = "Retrieval quality and speed"
MODES = ("lexical", "dense", "fused")
QUESTION, TRANSLATED = "question", "with translation"
LODESTAR = Path("bench") / "corpora" / "lodestar"
RANKED = 10  # passages asked for when scoring quality (recall@1, recall@5, MRR@10)
SPEED_LIMIT = 5  # passages asked for when timing
SIZE, SEED, ROUNDS, LOADS, COLD = 10_000, 20_261_122, 5, 3, 3
RECALL_GOAL = 0.9  # recall@5, fused, the chain's filter ladder, translations fused in
CROSS_GAP_GOAL = 0.05  # cross-language recall@5 at most this far below same-language
P50_GOAL_MS = 10.0  # p50 search latency on the 10k-chunk index, fused, chain's filter
CHAIN, NO_FILTER, CROSS = "chain filter", "no filter", "chain filter + translation"
SPEED_KINDS = (CHAIN, NO_FILTER, CROSS)


@dataclass(frozen=True)
class Outcome:
    question: str
    language: str
    kind: str
    expected: str
    translated: bool
    # 1-based rank of the first passage of the expected document within RANKED, per mode and
    # per variant (the question alone; with its translation as search_query).
    ranks: dict[tuple[str, str], int | None]
    filter_used: str  # which of the chain's filters answered, fused, question alone


@dataclass
class Corpus:
    name: str
    documents: int = 0
    chunks: int = 0
    build_seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str = ""

    def ranks(
        self, mode: str, variant: str, kind: str | None = None, language: str | None = None
    ) -> list[int]:
        chosen = [
            o
            for o in self.outcomes
            if kind in (None, o.kind) and language in (None, o.language)
            if variant == QUESTION or o.translated
        ]
        return [o.ranks[(mode, variant)] or 0 for o in chosen]

    def chain_ranks(
        self, mode: str, kind: str | None = None, language: str | None = None
    ) -> list[int]:
        """As the chain ranks: with the translation where a question has one (it stands for
        the search_query classify returns), else the question alone."""
        return [
            o.ranks[(mode, TRANSLATED if o.translated else QUESTION)] or 0
            for o in self.outcomes
            if kind in (None, o.kind) and language in (None, o.language)
        ]


@dataclass
class RetrievalResult:
    corpora: list[Corpus] = field(default_factory=list)
    model: str = ""
    dense_off: str = ""
    synthetic_chunks: int = 0
    synthetic_bytes: int = 0
    synthetic_vector_bytes: int = 0
    embed_seconds: float = 0.0
    load_seconds: list[float] = field(default_factory=list)
    query_seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    cold: list[tuple[float, float]] = field(default_factory=list)  # (import s, load s)
    rounds: int = ROUNDS


def scores(ranks: list[int]) -> tuple[int, float, float, float]:
    """n, recall@1, recall@5 and MRR."""
    n = len(ranks) or 1
    return (
        len(ranks),
        sum(0 < r <= 1 for r in ranks) / n,
        sum(0 < r <= 5 for r in ranks) / n,
        sum(1 / r for r in ranks if r) / n,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retrieval-rounds",
        type=int,
        default=ROUNDS,
        help=f"retrieval: timed rounds of every question on the 10k-chunk index (default {ROUNDS})",
    )


def _rank(passages: list[Any], source: str) -> int | None:
    return next((n for n, p in enumerate(passages, start=1) if p.source == source), None)


def _questions(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in paths
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]


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


def _request(q: dict[str, Any], category: str, translated: bool) -> Any:
    from concierge.models.state import RetrieveInput

    return RetrieveInput(
        request_id="bench",
        question=q["question"],
        category=category,
        language=q["language"],
        deadline_ms=2**62,
        search_query=q.get("translation") if translated else None,
    )


def _measure(
    name: str, docs: Path, questions: list[dict[str, Any]], embedder: Any, log: TextIO
) -> Corpus:
    from concierge.adapters.retrieval.local_index import LocalIndex
    from concierge.steps.retrieve import retrieve
    from concierge_cli.ingestion import build_index

    print(f"  retrieval: ingesting {docs}", file=log)
    started = time.perf_counter()
    index_file = build_index([docs], embedder=embedder)
    corpus = Corpus(name, build_seconds=time.perf_counter() - started)
    categories = {chunk.source: chunk.category for chunk in index_file.chunks}
    if missing := {q["expected_source"] for q in questions} - categories.keys():
        raise ValueError(f"{name}: questions name documents it does not have: {sorted(missing)}")
    corpus.documents, corpus.chunks = len(categories), len(index_file.chunks)
    indexes = {mode: LocalIndex(index_file, embedder, mode) for mode in MODES}
    for q in questions:
        translated = bool(q.get("translation"))
        category = categories[q["expected_source"]]
        ranks: dict[tuple[str, str], int | None] = {}
        filter_used = ""
        for mode, index in indexes.items():
            for variant in (QUESTION, TRANSLATED) if translated else (QUESTION,):
                found = retrieve(_request(q, category, variant == TRANSLATED), index, RANKED)
                ranks[(mode, variant)] = _rank(found.passages, q["expected_source"])
                if mode == "fused" and variant == QUESTION:
                    filter_used = found.filter_used
        corpus.outcomes.append(
            Outcome(
                q["question"],
                q["language"],
                q.get("kind", "direct"),
                q["expected_source"],
                translated,
                ranks,
                filter_used,
            )
        )
    return corpus


_COLD_LOAD = """
import time
started = time.perf_counter()
import numpy, tokenizers, safetensors.numpy
imported = time.perf_counter()
from concierge.adapters.embeddings.static import load_static_embedder
load_static_embedder().vectors(["warm"])
print(imported - started, time.perf_counter() - imported)
"""


def run(args: argparse.Namespace, root: Path, log: TextIO) -> RetrievalResult:
    from concierge.adapters.embeddings.static import DenseUnavailableError, load_static_embedder
    from concierge.adapters.retrieval.local_index import load_index, write_index
    from concierge.adapters.retrieval.port import SearchFilter
    from concierge.steps.retrieve import retrieve
    from concierge_cli.ingestion.vectors import embed_chunks

    result = RetrievalResult(rounds=args.retrieval_rounds)
    try:
        embedder = load_static_embedder()
    except DenseUnavailableError as error:
        raise SystemExit(f"bench retrieval measures the dense half: {error}") from None
    result.model = embedder.model

    sample_questions = _questions([root / "knowledge" / "sample" / "qa.jsonl"])
    sample = _measure("sample", root / "knowledge" / "sample", sample_questions, embedder, log)
    result.corpora.append(sample)
    lodestar = root / LODESTAR
    question_files = sorted((lodestar / "questions").glob("*.jsonl"))
    if (lodestar / "docs").is_dir() and question_files:
        questions = _questions(question_files)
        result.corpora.append(_measure("lodestar", lodestar / "docs", questions, embedder, log))
    else:
        result.corpora.append(
            Corpus("lodestar", skipped=f"no documents or questions in {LODESTAR}")
        )

    from concierge_cli.ingestion import build_index

    base = build_index([root / "knowledge" / "sample"])
    big = synthetic_index(base, SIZE, SEED)
    result.synthetic_chunks = len(big.chunks)
    print(f"  retrieval: embedding a {SIZE:,}-chunk index", file=log)
    started = time.perf_counter()
    big.embeddings = embed_chunks(big.chunks, embedder, None)[0]
    result.embed_seconds = time.perf_counter() - started
    result.synthetic_vector_bytes = len(big.embeddings.vectors)
    with tempfile.TemporaryDirectory(prefix="concierge-bench-") as work:
        path = Path(work) / "index.json"
        write_index(big, path)
        del big
        result.synthetic_bytes = path.stat().st_size
        print(f"  retrieval: loading it {LOADS} times", file=log)
        indexes: dict[str, Any] = {}
        for _ in range(LOADS):
            indexes.clear()
            gc.collect()
            started = time.perf_counter()
            indexes["fused"] = load_index(str(path), dense=lambda: embedder, mode="fused")
            result.load_seconds.append(time.perf_counter() - started)
        indexes["lexical"] = load_index(str(path), mode="lexical")
        indexes["dense"] = load_index(str(path), dense=lambda: embedder, mode="dense")
    gc.collect()

    # The sample's questions, on the big index: as the chain asks (its filter ladder), with no
    # filter, and with the translation fused in (only the questions that have one).
    categories = {chunk.source: chunk.category for chunk in base.chunks}
    plans = [
        (q, _request(q, categories[q["expected_source"]], False), None) for q in sample_questions
    ]
    plans += [
        (q, None, _request(q, categories[q["expected_source"]], True))
        for q in sample_questions
        if q.get("translation")
    ]
    result.query_seconds = {(mode, kind): [] for mode in MODES for kind in SPEED_KINDS}
    everything, clock = SearchFilter(), time.perf_counter
    for number in range(args.retrieval_rounds + 1):  # round 0 warms up
        order = MODES if number % 2 else MODES[::-1]
        for q, request, crossed in plans:
            for mode in order:
                index = indexes[mode]
                if request is not None:
                    calls = [
                        (CHAIN, retrieve, (request, index, SPEED_LIMIT, None), {"screened": False}),
                        (NO_FILTER, index.search, (q["question"], everything, SPEED_LIMIT), {}),
                    ]
                else:
                    calls = [
                        (CROSS, retrieve, (crossed, index, SPEED_LIMIT, None), {"screened": False})
                    ]
                for kind, function, positional, named in calls:
                    started = clock()
                    function(*positional, **named)
                    elapsed = clock() - started
                    if number:
                        result.query_seconds[(mode, kind)].append(elapsed)

    print(f"  retrieval: the dense model's cold load, {COLD} fresh interpreters", file=log)
    for _ in range(COLD):
        done = subprocess.run(
            [sys.executable, "-c", _COLD_LOAD],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        )
        imported, loaded = (float(value) for value in done.stdout.split())
        result.cold.append((imported, loaded))
    return result


def _score_cells(ranks: list[int]) -> list[str]:
    _, *values = scores(ranks)
    return [f"{value:.2f}" for value in values]


def _quality(corpus: Corpus) -> str:
    if corpus.skipped:
        return f"### {corpus.name}\n\nNot measured: {corpus.skipped}."
    languages = sorted({o.language for o in corpus.outcomes})
    kinds = sorted({o.kind for o in corpus.outcomes})
    groups: list[tuple[str, str | None, str | None]] = [("all questions", None, None)]
    groups += [(f"language `{language}`", None, language) for language in languages]
    groups += [(f"kind `{kind}`", kind, None) for kind in kinds]
    rows = []
    for label, kind, language in groups:
        n = len(corpus.ranks("fused", QUESTION, kind, language))
        cells = [
            cell
            for mode in MODES
            for cell in _score_cells(corpus.ranks(mode, QUESTION, kind, language))
        ]
        rows.append([label, str(n), *cells])
    chain = [cell for mode in MODES for cell in _score_cells(corpus.chain_ranks(mode))]
    rows.append(
        [
            "**all, translations fused in (as the chain)**",
            str(len(corpus.outcomes)),
            *chain,
        ]
    )
    headers = [
        "questions",
        "n",
        *(f"{metric} {mode}" for mode in MODES for metric in ("R@1", "R@5", "MRR")),
    ]
    translated = [o for o in corpus.outcomes if o.translated]
    cross_rows = []
    for mode in MODES:
        for variant in (QUESTION, TRANSLATED):
            ranks = (
                corpus.ranks(mode, variant)
                if variant == TRANSLATED
                else [o.ranks[(mode, QUESTION)] or 0 for o in translated]
            )
            cross_rows.append([f"`{mode}`", variant, str(len(ranks)), *_score_cells(ranks)])
    used = Counter(o.filter_used for o in corpus.outcomes)
    misses = [
        [
            o.question,
            o.language,
            o.kind,
            f"`{o.expected}`",
            *(
                str(o.ranks[(mode, TRANSLATED if o.translated else QUESTION)] or "-")
                for mode in MODES
            ),
        ]
        for o in corpus.outcomes
        if not 0 < (o.ranks[("fused", TRANSLATED if o.translated else QUESTION)] or 0) <= 5
    ]
    return "\n".join(
        [
            f"### {corpus.name} ({corpus.documents} documents, {corpus.chunks} chunks; "
            f"ingested with vectors in {corpus.build_seconds:.1f} s)",
            "",
            "The question alone, with the chain's filter ladder (last row: with the translation "
            "of the questions that have one fused in as search_query):",
            "",
            table(headers, rows),
            "",
            f"Questions with a translation ({len(translated)}), alone and with it:",
            "",
            table(["mode", "searched", "n", "R@1", "R@5", "MRR"], cross_rows, "llrrrr"),
            "",
            "Filter that answered, fused, question alone: "
            + ", ".join(
                f"`{name}` {used[name]}" for name in ("category+language", "language", "none")
            )
            + ".",
            "",
            f"Expected document not in the fused top 5, as the chain searches ({len(misses)} "
            f"questions; rank within the first {RANKED}, `-` = not there):",
            "",
            table(
                ["question", "lang", "kind", "expected", *(f"rank {mode}" for mode in MODES)],
                misses,
                "llllrrr",
            )
            if misses
            else "none.",
        ]
    )


def _cross_gap(corpus: Corpus) -> tuple[float, float]:
    """recall@5, fused as the chain searches, of cross-language and of same-language questions."""
    cross = scores(corpus.chain_ranks("fused", kind="cross-language"))[2]
    same = scores(
        [
            o.ranks[("fused", TRANSLATED if o.translated else QUESTION)] or 0
            for o in corpus.outcomes
            if o.kind != "cross-language"
        ]
    )[2]
    return cross, same


def render(result: RetrievalResult) -> str:
    speed = {key: Summary.of(values) for key, values in result.query_seconds.items()}
    fused_p50 = speed[("fused", CHAIN)].p50_ms
    goal_rows = []
    for corpus in result.corpora:
        if corpus.skipped:
            continue
        _, _, recall, mrr = scores(corpus.chain_ranks("fused"))
        lexical = scores(corpus.chain_ranks("lexical"))[2]
        goal_rows.append(
            (
                f"recall@5, {corpus.name}, fused, chain filter (translations fused in)",
                f"≥ {RECALL_GOAL:.2f}",
                f"{recall:.2f}, MRR {mrr:.2f} (lexical only: {lexical:.2f})",
                recall >= RECALL_GOAL,
            )
        )
        cross, same = _cross_gap(corpus)
        crossing = [o for o in corpus.outcomes if o.kind == "cross-language"]
        translated = [o for o in crossing if o.translated]
        with_translation = scores([o.ranks[("fused", TRANSLATED)] or 0 for o in translated])[2]
        goal_rows.append(
            (
                f"cross-language recall@5, {corpus.name}, fused with the translation",
                f"≥ same-language minus {CROSS_GAP_GOAL:.2f}",
                f"{cross:.2f} (same-language: {same:.2f}; the {len(translated)} of "
                f"{len(crossing)} with a translation: {with_translation:.2f})",
                cross >= same - CROSS_GAP_GOAL,
            )
        )
    goal_rows.append(
        (
            f"p50 search latency, {result.synthetic_chunks:,}-chunk index, fused, chain filter",
            f"≤ {P50_GOAL_MS:g} ms",
            f"{ms(fused_p50, 2)} ms",
            fused_p50 <= P50_GOAL_MS,
        )
    )
    speed_rows = [
        [
            f"`{mode}`",
            kind,
            str(s.n),
            *(ms(v, 2) for v in (s.p50_ms, s.p95_ms, s.mean_ms, s.max_ms)),
        ]
        for (mode, kind), s in speed.items()
    ]
    imports = median([imported for imported, _ in result.cold]) * 1000
    loads = median([loaded for _, loaded in result.cold]) * 1000
    per_chunk = result.synthetic_vector_bytes / max(result.synthetic_chunks, 1)
    return "\n".join(
        [
            reproduce(TITLE, "retrieval", ("--retrieval-rounds", result.rounds, ROUNDS)),
            "",
            goals(*goal_rows),
            "",
            f"Dense model: `{result.model}`.",
            "",
            *(f"{_quality(corpus)}\n" for corpus in result.corpora),
            f"### Speed and size on a generated {result.synthetic_chunks:,}-chunk index",
            "",
            f"Index: {result.synthetic_chunks:,} chunks (the sample's, then generated; seed "
            f"{SEED}). **Embedding them: {result.embed_seconds:.1f} s** "
            f"({result.embed_seconds / max(result.synthetic_chunks, 1) * 1000:.2f} ms a chunk). "
            f"**Index file: {result.synthetic_bytes / 1e6:.1f} MB of JSON**, of which "
            f"{result.synthetic_vector_bytes / 1e6:.1f} MB are the vectors "
            f"({per_chunk:.0f} bytes a chunk in base64). **`load_index` with the dense "
            f"half: median {ms(median(result.load_seconds) * 1000, 0)} ms** ("
            + ", ".join(ms(s * 1000, 0) for s in result.load_seconds)
            + " ms), the model already loaded.",
            "",
            table(
                ["mode", "search", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "max (ms)"],
                speed_rows,
                "llrrrrr",
            ),
            "",
            f"The dense model's cold load in a fresh interpreter (median of {len(result.cold)}): "
            f"**import of numpy, tokenizers and safetensors {imports:.0f} ms; reading, hashing "
            f"and loading the weights and tokenizer {loads:.0f} ms**.",
        ]
    )
