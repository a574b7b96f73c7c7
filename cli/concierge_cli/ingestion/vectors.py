"""The dense vectors of an ingest: computed only for chunks whose embedded text is new.

A vector depends on the model and the exact text the model reads (`embedded_text`), nothing
else: a chunk of the previous index with the same model and text keeps its stored int8 row,
whichever file or position it came from. So an ingest that changed one document embeds that
document's chunks, and a full re-read (`--full`) with no change embeds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concierge.adapters.embeddings.port import DenseEmbedder
from concierge.adapters.retrieval.vectors import (
    VectorsMismatchError,
    embedded_text,
    int8_rows,
    pack,
    quantised,
    text_key,
)
from concierge.knowledge import Chunk, ChunkVectors, IndexFile


@dataclass(frozen=True)
class VectorCounts:
    model: str
    embedded: int
    reused: int


def previous_rows(previous: IndexFile | None, model: str) -> dict[str, Any]:
    """The int8 rows of the previous index by text key, when it was embedded by `model`."""
    if previous is None or previous.embeddings is None or previous.embeddings.model != model:
        return {}
    try:
        rows = int8_rows(previous.embeddings, len(previous.chunks))
    except VectorsMismatchError:
        return {}
    return {
        text_key(model, embedded_text(chunk)): row
        for chunk, row in zip(previous.chunks, rows, strict=True)
    }


def embed_chunks(
    chunks: list[Chunk], embedder: DenseEmbedder, previous: IndexFile | None
) -> tuple[ChunkVectors, VectorCounts]:
    """The chunks' packed vectors, reusing the previous index's where the text is the same."""
    import numpy as np

    known = previous_rows(previous, embedder.model)
    keys = [text_key(embedder.model, embedded_text(chunk)) for chunk in chunks]
    rows = np.zeros((len(chunks), embedder.dimensions), dtype=np.int8)
    missing = [number for number, key in enumerate(keys) if key not in known]
    for number, key in enumerate(keys):
        if key in known:
            rows[number] = known[key]
    if missing:
        fresh = embedder.vectors([embedded_text(chunks[number]) for number in missing])
        rows[missing] = quantised(fresh)
    counts = VectorCounts(embedder.model, len(missing), len(chunks) - len(missing))
    return pack(embedder.model, rows), counts
