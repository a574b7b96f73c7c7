"""An embedded hybrid index, lexical (BM25) and dense, persisted as one JSON file.

Built by `concierge index`, loaded once per process from a path or from S3. Small enough
to need no service running when idle, which is the point for small knowledge bases.

At load, the chunks are grouped by language, then by category, and each language is indexed
as its own collection: analysed with its own stemmer (`concierge.text.terms`; German compounds
split against that language's vocabulary), with its own document frequencies and average
length. A query is analysed once per language it is matched against, so a Spanish question
meets Spanish documents with the Spanish stemmer, and the names it shares with documents in
other languages still match. Every posting carries its final BM25 weight (idf included), so a
search only adds up weights; a filter is a range of positions, not a scan of the chunks.

When the file carries the chunks' vectors (`concierge ingest` with the `dense` extra) and the
same model is installed here, a search also ranks the chunks of the filter's ranges by cosine
with the query's vector (one matrix product over the range), and the two rankings are fused by
reciprocal rank: a chunk's score is the sum over the rankings of weight / (k + rank). The dense
ranking brings what the words miss ("pay by card" for "we accept Visa"); only chunks with a
cosine of at least `DENSE_FLOOR` take part, so a filter that holds nothing relevant still finds
nothing and the retrieve step relaxes it as it does for BM25. `mode` keeps one ranking alone
(`lexical`, `dense`) for comparison; without vectors, or with another model, search is lexical.

Scores: BM25 when lexical, the cosine when dense, and when fused the fused score divided by
what a chunk ranked first by both would get (so 1.0 at best), which is what `min_score` compares.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import tempfile
from bisect import bisect_left
from collections import Counter
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from concierge.adapters.embeddings.port import DenseEmbedder
from concierge.adapters.retrieval.port import SearchFilter
from concierge.errors import ConciergeError, IndexNotFoundError
from concierge.knowledge import Chunk, IndexFile
from concierge.models.state import Passage
from concierge.text import terms

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.exceptions import ClientError

    from concierge.adapters.aws_errors import AwsError

SearchMode = Literal["fused", "lexical", "dense"]

_K1 = 1.2
_B = 0.75
# BM25F-style field weights: a term in the document's title counts this many times, and a
# term in one of the chunk's Markdown headings this many times more than in its body.
_TITLE_WEIGHT = 2
_HEADING_EXTRA = 1
_SCORE = itemgetter(1)
# Reciprocal rank fusion: k, the weight of each ranking, and how deep each ranking is read.
# Tuned on the sample's questions (BENCHMARKS.md, "Retrieval quality and speed").
# The static model alone ranks below BM25 on the sample (recall@5 0.85 against 0.90), so its
# ranking counts half; a small k lets the first ranks decide.
RRF_K = 10
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 0.5
FUSION_DEPTH = 50
# Below this cosine a chunk is not a dense match (a static model finds some similarity between
# almost any two texts of one language).
DENSE_FLOOR = 0.2


class _Language:
    """The chunks of one language: positions `start`..`stop` of the index, grouped by category.

    `postings` maps a term to the positions of the chunks holding it (ascending) and the
    term's BM25 weight in each (once `weigh` has applied the index-wide idf)."""

    __slots__ = ("_norms", "categories", "compounds", "language", "postings", "start", "stop")

    def __init__(self, language: str, start: int, chunks: list[Chunk]) -> None:
        self.language = language
        self.start = start
        self.stop = start + len(chunks)
        self.categories: dict[str, tuple[int, int]] = {}
        for position, chunk in enumerate(chunks, start=start):
            first, _ = self.categories.get(chunk.category, (position, position))
            self.categories[chunk.category] = (first, position + 1)
        # German compounds are split against the words of the German chunks themselves.
        self.compounds = (
            frozenset(
                term for chunk in chunks for term in terms(f"{chunk.title}\n{chunk.text}", language)
            )
            if language == "de"
            else None
        )
        titles: dict[str, list[str]] = {}
        # Until `weigh`: per term, the positions holding it and its weighted frequency there.
        self.postings: dict[str, tuple[list[int], list[float]]] = {}
        lengths: list[float] = []
        for position, chunk in enumerate(chunks, start=start):
            if chunk.title not in titles:
                titles[chunk.title] = self.analyse(chunk.title)
            counts = self._counts(chunk, titles[chunk.title])
            lengths.append(sum(counts.values()))
            for term, frequency in counts.items():
                entry = self.postings.get(term)
                if entry is None:
                    self.postings[term] = ([position], [frequency])
                else:
                    entry[0].append(position)
                    entry[1].append(frequency)
        average = (sum(lengths) / len(lengths)) or 1.0
        self._norms = [_K1 * (1 - _B + _B * length / average) for length in lengths]

    def weigh(self, idf: dict[str, float]) -> None:
        """Turn every posting's frequency into its BM25 weight, with the index-wide idf."""
        norms, start = self._norms, self.start
        for term, (positions, frequencies) in self.postings.items():
            factor = idf[term] * (_K1 + 1)
            frequencies[:] = [
                factor * frequency / (frequency + norms[position - start])
                for position, frequency in zip(positions, frequencies, strict=True)
            ]
        self._norms = []

    def analyse(self, text: str) -> list[str]:
        return terms(text, self.language, self.compounds)

    def _counts(self, chunk: Chunk, title: list[str]) -> Counter[str]:
        """Term frequencies of a chunk, headings and title weighted up."""
        body: list[str] = []
        headings: list[str] = []
        for line in chunk.text.splitlines():
            (headings if line.startswith("#") else body).append(line)
        # A chunker that keeps the heading apart from the text (a `heading` field) still has
        # it weighted as a heading.
        heading = getattr(chunk, "heading", "")
        if heading and not any(line.lstrip("#").strip() == heading for line in headings):
            headings.append(heading)
        counts = Counter(self.analyse("\n".join(body)))
        for term in self.analyse("\n".join(headings)):
            counts[term] += 1 + _HEADING_EXTRA
        for term in title:
            counts[term] += _TITLE_WEIGHT
        return counts

    def scope(self, category: str | None) -> tuple[int, int] | None:
        """The positions a category filter leaves in this language; None when none."""
        if category is None:
            return self.start, self.stop
        return self.categories.get(category)


class LocalIndex:
    def __init__(
        self,
        index: IndexFile,
        embedder: DenseEmbedder | None = None,
        mode: SearchMode = "fused",
    ) -> None:
        """`embedder`: the model of the index's vectors (ignored when the file has none, or
        they are another model's); `mode`: which rankings a search uses."""
        self.kb_version = index.kb_version
        # What the knowledge base holds, for routing questions to it (classify's menu).
        self.catalog = index.catalog()
        # Position in the index -> the chunk, and its place in the file (which breaks ties).
        order = sorted(
            range(len(index.chunks)),
            key=lambda i: (index.chunks[i].language, index.chunks[i].category, i),
        )
        self._chunks = [index.chunks[i] for i in order]
        self._file_order = order
        self._languages: dict[str, _Language] = {}
        start = 0
        while start < len(self._chunks):
            language = self._chunks[start].language
            stop = start
            while stop < len(self._chunks) and self._chunks[stop].language == language:
                stop += 1
            self._languages[language] = _Language(language, start, self._chunks[start:stop])
            start = stop
        # One idf for the whole index: a name shared by documents in several languages is
        # less telling than a word of one of them, and scores of different languages compare.
        found: Counter[str] = Counter()
        for part in self._languages.values():
            found.update({term: len(entry[0]) for term, entry in part.postings.items()})
        total = len(self._chunks)
        idf = {
            term: math.log(1 + (total - count + 0.5) / (count + 0.5))
            for term, count in found.items()
        }
        for part in self._languages.values():
            part.weigh(idf)
        self._embedder: DenseEmbedder | None = None
        self._matrix: Any = None
        self.dense_status = self._load_vectors(index, embedder, mode)
        self.mode: SearchMode = mode if self._matrix is not None else "lexical"
        # Vectors the search was asked to use and cannot (no model here, or another one).
        self.dense_lost = index.embeddings is not None and mode not in ("lexical", self.mode)

    def _load_vectors(
        self, index: IndexFile, embedder: DenseEmbedder | None, mode: SearchMode
    ) -> str:
        """Take the index's vectors in position order; what the dense part is, in words."""
        vectors = index.embeddings
        if mode == "lexical":
            return "off (lexical search asked for)"
        if vectors is None:
            return "off: the index has no vectors (ingest it with the dense extra installed)"
        if embedder is None:
            return f"off: {vectors.model} is not loaded here"
        if embedder.model != vectors.model:
            return (
                f"off: the index's vectors are {vectors.model}, the model here is "
                f"{embedder.model} (ingest again)"
            )
        from concierge.adapters.retrieval.vectors import unpack

        self._matrix = unpack(vectors, len(index.chunks))[self._file_order]
        self._embedder = embedder
        return f"on ({vectors.model}, {mode})"

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        if search_filter.language is None:
            candidates = list(self._languages.values())
        else:
            language = self._languages.get(search_filter.language)
            candidates = [language] if language is not None else []
        scopes = [
            (language, scope)
            for language in candidates
            if (scope := language.scope(search_filter.category)) is not None
        ]
        if self.mode == "lexical":
            return self._passages(self._lexical(query, scopes, limit))
        dense = self._dense(query, [scope for _, scope in scopes], limit)
        if self.mode == "dense":
            return self._passages(dense)
        lexical = self._lexical(query, scopes, FUSION_DEPTH)
        return self._passages(_fused(lexical, dense, limit))

    def _lexical(
        self, query: str, scopes: list[tuple[_Language, tuple[int, int]]], limit: int
    ) -> list[tuple[int, float]]:
        scores: dict[int, float] = {}
        for language, scope in scopes:
            _accumulate(scores, language, dict.fromkeys(language.analyse(query)), *scope)
        return self._ranked(heapq.nlargest(limit, scores.items(), key=_SCORE))

    def _dense(
        self, query: str, scopes: list[tuple[int, int]], limit: int
    ) -> list[tuple[int, float]]:
        """The positions of `scopes` nearest the query, best first, at least `DENSE_FLOOR`."""
        if not scopes or self._embedder is None:
            return []
        import numpy as np

        vector = self._embedder.vectors([query])[0]
        ranges = _merged(scopes)
        positions = np.concatenate([np.arange(low, high) for low, high in ranges])
        # Slices, not an index array: a slice of the matrix is a view, never a copy. einsum,
        # not `@`: BLAS splits a product of a few thousand rows across threads, which costs
        # more than it gains on a Lambda's share of a CPU or a busy machine (3 ms against
        # 0.2-0.7 ms for 10,000 rows here).
        similarities = np.concatenate(
            [np.einsum("ij,j->i", self._matrix[low:high], vector) for low, high in ranges]
        )
        depth = max(limit, FUSION_DEPTH) if self.mode == "fused" else limit
        if len(similarities) > depth:
            nearest = np.argpartition(-similarities, depth - 1)[:depth]
        else:
            nearest = np.arange(len(similarities))
        found = [
            (int(positions[i]), float(similarities[i]))
            for i in nearest
            if similarities[i] >= DENSE_FLOOR
        ]
        return self._ranked(found)[: limit if self.mode == "dense" else depth]

    def _ranked(self, found: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Best score first; the file's order breaks ties."""
        return sorted(found, key=lambda item: (-item[1], self._file_order[item[0]]))

    def _passages(self, ranked: list[tuple[int, float]]) -> list[Passage]:
        return [
            Passage(**self._chunks[position].model_dump(), score=round(score, 4))
            for position, score in ranked
        ]


def _merged(scopes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges of positions with adjacent ones joined (every language's whole range is the
    whole index: one product instead of one per language)."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(scopes):
        if merged and merged[-1][1] == low:
            merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def _fused(
    lexical: list[tuple[int, float]], dense: list[tuple[int, float]], limit: int
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of two best-first rankings, on a scale where 1.0 is a chunk that
    both rank first. A tie keeps the lexical ranking's order (then the dense one's)."""
    best = LEXICAL_WEIGHT / (RRF_K + 1) + DENSE_WEIGHT / (RRF_K + 1)
    scores: dict[int, float] = {}
    for weight, ranking in ((LEXICAL_WEIGHT, lexical), (DENSE_WEIGHT, dense)):
        for rank, (position, _) in enumerate(ranking, start=1):
            scores[position] = scores.get(position, 0.0) + weight / (RRF_K + rank)
    first_seen: dict[int, int] = {}
    for position, _ in (*lexical, *dense):
        first_seen.setdefault(position, len(first_seen))
    ranked = sorted(scores.items(), key=lambda item: (-item[1], first_seen[item[0]]))
    return [(position, score / best) for position, score in ranked[:limit]]


def _accumulate(
    scores: dict[int, float], language: _Language, query: dict[str, None], low: int, high: int
) -> None:
    """Add the BM25 weights of the query's terms for the positions in [low, high)."""
    whole = low == language.start and high == language.stop
    get = scores.get
    for term in query:
        entry = language.postings.get(term)
        if entry is None:
            continue
        positions, weights = entry
        if not whole:
            first = bisect_left(positions, low)
            last = bisect_left(positions, high, first)
            positions, weights = positions[first:last], weights[first:last]
        for position, weight in zip(positions, weights, strict=True):
            scores[position] = get(position, 0.0) + weight


def load_index(
    uri: str,
    s3_client: Any | None = None,
    *,
    dense: Callable[[], DenseEmbedder] | None = None,
    mode: SearchMode = "fused",
) -> LocalIndex:
    """Read an index from a file path, or from an s3://bucket/key URI with `s3_client`.
    `dense` loads the model of the index's vectors; it is called only when the file has vectors
    and `mode` uses them, and a `ConciergeError` from it (the `dense` extra missing) leaves the
    search lexical, as `dense_status` says."""
    if uri.startswith("s3://"):
        if s3_client is None:
            raise ValueError(f"{uri} needs an S3 client")
        from concierge.adapters.aws_errors import KNOWLEDGE_BASE, translated

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        with translated(KNOWLEDGE_BASE, f"index {uri}", refine=_missing_index):
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        path = Path(uri)
        if not path.is_file():
            raise IndexNotFoundError(f"no index at {path}: build it with `concierge ingest`")
        body = path.read_bytes()
    index = IndexFile.model_validate_json(body)
    if dense is None or index.embeddings is None or mode == "lexical":
        return LocalIndex(index, mode=mode)
    try:
        embedder = dense()
    except ConciergeError as error:
        built = LocalIndex(index, mode=mode)
        built.dense_status = f"off: {error}"
        built.dense_lost = True
        return built
    return LocalIndex(index, embedder, mode)


def _missing_index(exc: ClientError, error: AwsError, what: str) -> IndexNotFoundError | None:
    if error.code == "nosuchkey":
        return IndexNotFoundError(f"no {what}: upload one with `concierge ingest --target s3://…`")
    return None


def write_index(index: IndexFile, path: Path) -> None:
    """Write atomically: readers see the old index or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(index.model_dump(mode="json"), handle, ensure_ascii=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
