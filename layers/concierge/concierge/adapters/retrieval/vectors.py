"""The chunk vectors of an index file (`knowledge.ChunkVectors`): what text of a chunk is
embedded, and how the vectors are packed into the file and read back.

int8, one byte a dimension: 256 bytes a chunk instead of 1 KB of float32, and the ranking moves
little (each row keeps 8 bits of its own range). numpy is imported by the functions, never by
this module: an index without vectors, or a process without the `dense` extra, never needs it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from concierge.knowledge import Chunk, ChunkVectors

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]


class VectorsMismatchError(ValueError):
    """The vectors of an index do not fit its chunks (a hand-edited or truncated file)."""


def embedded_text(chunk: Chunk) -> str:
    """What the model reads of a chunk: its document's title, then its text (which carries its
    headings)."""
    return f"{chunk.title}\n{chunk.text}"


def text_key(model: str, text: str) -> str:
    """The key a vector is reused under by the next ingest: the model and the exact text."""
    return hashlib.sha256(f"{model}\n{text}".encode()).hexdigest()


def quantised(matrix: Matrix) -> npt.NDArray[np.int8]:
    """Rows of unit vectors as int8, each row scaled to use the whole range."""
    import numpy as np

    peaks = np.abs(matrix).max(axis=1, keepdims=True) if matrix.size else matrix[:, :1]
    scaled = np.divide(matrix * 127.0, peaks, out=np.zeros_like(matrix), where=peaks > 0)
    rows: npt.NDArray[np.int8] = np.clip(np.rint(scaled), -127, 127).astype(np.int8)
    return rows


def pack(model: str, rows: npt.NDArray[np.int8]) -> ChunkVectors:
    """int8 rows (see `quantised`) as the index file keeps them."""
    return ChunkVectors(
        model=model,
        dimensions=int(rows.shape[1]),
        vectors=base64.b64encode(rows.tobytes()).decode("ascii"),
    )


def int8_rows(vectors: ChunkVectors, rows: int) -> npt.NDArray[np.int8]:
    """The packed rows as they are stored."""
    import numpy as np

    raw = base64.b64decode(vectors.vectors)
    if len(raw) != rows * vectors.dimensions:
        raise VectorsMismatchError(
            f"the index holds {len(raw)} vector bytes for {rows} chunks of "
            f"{vectors.dimensions} dimensions: run `concierge ingest --full`"
        )
    return np.frombuffer(raw, dtype=np.int8).reshape(rows, vectors.dimensions)


def unpack(vectors: ChunkVectors, rows: int) -> Matrix:
    """The float32 unit rows of packed vectors (zero rows stay zero)."""
    import numpy as np

    matrix = int8_rows(vectors, rows).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix
