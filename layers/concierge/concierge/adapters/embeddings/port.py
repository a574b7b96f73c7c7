"""The embedding port: texts in, unit vectors out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol


class Embedder(Protocol):
    # The configuration spec that builds this embedder (`offline`, `bedrock:<model id>`).
    # Vectors of different specs are not comparable: whoever stores vectors keeps it with them.
    spec: str

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order. A text without any feature (empty,
        punctuation only) may come back as the zero vector, which is similar to nothing."""
        ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors of the same length; 0.0 when either is zero."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths: {len(a)} and {len(b)}")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


def normalised(vector: Sequence[float]) -> list[float]:
    """`vector` scaled to length 1 (the zero vector stays zero)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0 for _ in vector]


class DenseEmbedder(Protocol):
    """A local model whose vectors an index stores (`static.StaticEmbedder`)."""

    # `<name>@<hash>`: vectors of another model are not comparable.
    model: str
    dimensions: int

    def vectors(self, texts: list[str]) -> Any:
        """A float32 numpy matrix: one L2-normalised row per text (zero for a text without
        tokens)."""
        ...
