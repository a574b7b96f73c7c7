"""An embedded lexical index (BM25) persisted as one JSON file.

Built by `concierge index`, loaded once per process from a path or from S3. Small enough
to need no service running when idle, which is the point for small knowledge bases.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from concierge.adapters.retrieval.port import SearchFilter
from concierge.errors import IndexNotFoundError
from concierge.knowledge import IndexFile
from concierge.models.state import Passage
from concierge.text import terms

_K1 = 1.2
_B = 0.75


class LocalIndex:
    def __init__(self, index: IndexFile) -> None:
        self.kb_version = index.kb_version
        self._chunks = index.chunks
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._lengths: list[int] = []
        for position, chunk in enumerate(self._chunks):
            counts = Counter(terms(f"{chunk.title} {chunk.text}"))
            self._lengths.append(sum(counts.values()))
            for term, frequency in counts.items():
                self._postings[term].append((position, frequency))
        self._average_length = (sum(self._lengths) / len(self._lengths)) if self._lengths else 1.0

    def __len__(self) -> int:
        return len(self._chunks)

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        allowed = self._allowed(search_filter)
        scores: dict[int, float] = defaultdict(float)
        total = len(self._chunks)
        for term in set(terms(query)):
            postings = self._postings.get(term, [])
            if not postings:
                continue
            idf = math.log(1 + (total - len(postings) + 0.5) / (len(postings) + 0.5))
            for position, frequency in postings:
                if allowed is not None and position not in allowed:
                    continue
                norm = _K1 * (1 - _B + _B * self._lengths[position] / self._average_length)
                scores[position] += idf * frequency * (_K1 + 1) / (frequency + norm)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [
            Passage(**self._chunks[position].model_dump(), score=round(score, 4))
            for position, score in ranked
        ]

    def _allowed(self, search_filter: SearchFilter) -> set[int] | None:
        if search_filter.category is None and search_filter.language is None:
            return None
        return {
            position
            for position, chunk in enumerate(self._chunks)
            if search_filter.category in (None, chunk.category)
            and search_filter.language in (None, chunk.language)
        }


def load_index(uri: str, s3_client: Any | None = None) -> LocalIndex:
    """Read an index from a file path or an s3://bucket/key URI."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if s3_client is None:
            from concierge.adapters.aws import aws_client

            s3_client = aws_client("s3")
        try:
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3_client.exceptions.NoSuchKey as exc:
            raise IndexNotFoundError(
                f"no index at {uri}: upload one with `concierge index`"
            ) from exc
        return LocalIndex(IndexFile.model_validate_json(body))
    path = Path(uri)
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {path}: build it with `concierge index`")
    return LocalIndex(IndexFile.model_validate_json(path.read_bytes()))


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
