"""De-duplication: a text that is in the knowledge base twice is only in it once.

Two levels, both keeping the first occurrence in source order (sources are sorted, so the
choice is stable from run to run):

- documents whose normalised text is identical (a copied file) — the copy is reported as a
  duplicate and neither indexed nor uploaded;
- chunks whose text is identical once whitespace is collapsed (a boilerplate section repeated
  in several documents) — the repeats are dropped from the index and counted in the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from concierge.knowledge import Chunk


def text_key(text: str) -> str:
    """The identity of a text for de-duplication: sha256 of it with whitespace collapsed."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def duplicate_documents(texts: Iterable[tuple[str, str]]) -> dict[str, str]:
    """{copy: original} for (source, text key) pairs given in source order."""
    first: dict[str, str] = {}
    copies: dict[str, str] = {}
    for source, key in texts:
        if key in first:
            copies[source] = first[key]
        else:
            first[key] = source
    return copies


def drop_duplicate_chunks(chunks: Iterable[Chunk]) -> tuple[list[Chunk], list[tuple[Chunk, Chunk]]]:
    """The chunks without repeats, and (dropped, the chunk it repeats) pairs."""
    kept: list[Chunk] = []
    seen: dict[str, Chunk] = {}
    dropped: list[tuple[Chunk, Chunk]] = []
    for chunk in chunks:
        key = text_key(chunk.text)
        if key in seen:
            dropped.append((chunk, seen[key]))
        else:
            seen[key] = chunk
            kept.append(chunk)
    return kept, dropped
