"""The dense part of local retrieval: a static token-embedding model that ships inside a PyPI
package, so nothing is downloaded at run time.

The model is WordLlama's `l2_supercat` at 256 dimensions (MIT licence): one learned vector per
token of Llama 2's 32,000-token vocabulary, 32,000 x 256 float32 (16 MB), in the `wordllama`
wheel with its tokenizer. A text is its token ids (the tokenizer, without special tokens), the
mean of their rows, L2-normalised: no network, no transformer, a few milliseconds for a chunk.
It knows English paraphrase ("pay with a credit card" is close to "we accept Visa"); it is not
multilingual, so questions in another language than the documents' need the translation that
classify and condense produce (`search_query`).

The files are read where pip installed them, without importing `wordllama` (its import pulls in
requests, pydantic and toml, and its loader looks for the tokenizer under a folder its wheel
does not have, then downloads it). What runs is numpy, `tokenizers` and `safetensors`: the
optional extra `concierge[dense]`. Without them, `load_static_embedder` raises
`DenseUnavailableError` saying what is missing, and retrieval stays lexical.

`model` names the model and hashes its weights and tokenizer: an index records it with its
vectors, and a query is only compared with vectors of the same model.
"""

from __future__ import annotations

import hashlib
import json
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concierge.errors import ConciergeError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

SPEC = "wordllama"
MODEL_NAME = "wordllama-l2_supercat-256"
PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
# The extra's packages, by the name they are imported under.
REQUIRED = ("numpy", "tokenizers", "safetensors", PACKAGE)
# Texts tokenised and pooled together: bounds the token rows held at once.
_BATCH = 64


class DenseUnavailableError(ConciergeError):
    """The dense model cannot be loaded here (the `dense` extra is not installed)."""


def model_files() -> tuple[Path, Path]:
    """The weights and tokenizer files inside the installed `wordllama` package."""
    missing = [name for name in REQUIRED if find_spec(name) is None]
    if missing:
        raise DenseUnavailableError(
            f"{', '.join(missing)} not installed (pip install 'concierge[dense]')"
        )
    spec = find_spec(PACKAGE)
    folders = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    for folder in folders:
        weights, tokenizer = folder / WEIGHTS, folder / TOKENIZER
        if weights.is_file() and tokenizer.is_file():
            return weights, tokenizer
    raise DenseUnavailableError(f"the {PACKAGE} package holds no {WEIGHTS} and {TOKENIZER}")


def model_identity(weights: bytes, tokenizer: dict[str, Any]) -> str:
    """`<name>@<hash>` of the weights and of what the tokenizer does (not how its file is
    formatted: wheels of two versions carry the same tokenizer written differently)."""
    digest = hashlib.sha256(weights)
    digest.update(json.dumps(tokenizer, sort_keys=True, separators=(",", ":")).encode())
    return f"{MODEL_NAME}@{digest.hexdigest()[:16]}"


class StaticEmbedder:
    """Mean-pooled static token vectors, unit length; the same text always gives the same
    vector. `vectors` gives a float32 matrix, `embed` the port's lists."""

    spec = SPEC

    def __init__(self, table: Matrix, tokenizer: Any, model: str) -> None:
        self._table = table
        self._tokenizer = tokenizer
        self.model = model
        self.dimensions = int(table.shape[1])

    def vectors(self, texts: list[str]) -> Matrix:
        """One L2-normalised row per text; a text without tokens is the zero row."""
        import numpy as np

        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        last = self._table.shape[0] - 1
        for start in range(0, len(texts), _BATCH):
            encodings = self._tokenizer.encode_batch(
                texts[start : start + _BATCH], add_special_tokens=False
            )
            for row, encoding in enumerate(encodings, start=start):
                if encoding.ids:
                    ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, last)
                    out[row] = self._table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self.vectors(texts)]


def load_static_embedder() -> StaticEmbedder:
    """The model from the installed `wordllama` package: its weights and tokenizer read once,
    hashed into `model`. Raises `DenseUnavailableError` when the `dense` extra is missing."""
    weights_path, tokenizer_path = model_files()
    from safetensors.numpy import load
    from tokenizers import Tokenizer

    raw = weights_path.read_bytes()
    text = tokenizer_path.read_text(encoding="utf-8")
    tokenizer = Tokenizer.from_str(text)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    table = load(raw)[TENSOR].astype("float32", copy=False)
    return StaticEmbedder(table, tokenizer, model_identity(raw, json.loads(text)))
