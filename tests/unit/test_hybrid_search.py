"""Hybrid local search: BM25 and the dense vectors fused by reciprocal rank, inside the same
category and language ranges as BM25, and lexical search whenever the dense half cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from concierge import wiring
from concierge.adapters.embeddings.static import (
    DenseUnavailableError,
    StaticEmbedder,
    load_static_embedder,
)
from concierge.adapters.retrieval.local_index import LocalIndex, load_index, write_index
from concierge.adapters.retrieval.port import SearchFilter
from concierge.knowledge import Chunk, IndexFile
from concierge_cli.ingestion.vectors import embed_chunks

DOCUMENTS = [
    (
        "payment.md",
        "Payment",
        "We accept Visa, Mastercard, American Express and PayPal.",
        "orders",
        "en",
    ),
    (
        "shipping.md",
        "Shipping",
        "Parcels leave our warehouse within two working days.",
        "orders",
        "en",
    ),
    ("tents.md", "Tents", "The Cirrus 2 tent sleeps two and weighs 1.9 kg.", "products", "en"),
    (
        "zelte.md",
        "Zelte",
        "Das Cirrus 2 Zelt wiegt 1,9 kg und bietet Platz für zwei.",
        "products",
        "de",
    ),
    ("pago.md", "Pago", "Aceptamos Visa, Mastercard y PayPal.", "orders", "es"),
]


@pytest.fixture(scope="module")
def model() -> StaticEmbedder:
    return load_static_embedder()


def _chunks() -> list[Chunk]:
    return [
        Chunk(source=source, title=title, text=text, category=category, language=language)
        for source, title, text, category, language in DOCUMENTS
    ]


def _index(embedder: object | None) -> IndexFile:
    chunks = _chunks()
    index = IndexFile(kb_version="v1", chunks=chunks)
    if embedder is not None:
        index.embeddings = embed_chunks(chunks, embedder, None)[0]  # type: ignore[arg-type]
    return index


class Axes:
    """A stand-in model: each text is the unit vector of the first keyword it holds."""

    model = "axes@1"
    dimensions = 4
    keywords = ("card", "parcel", "tent", "zelt")

    def vectors(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), 4), np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            hits = [n for n, word in enumerate(self.keywords) if word in lowered]
            if hits:
                rows[row, hits[0]] = 1.0
        return rows


def test_a_paraphrase_without_shared_words_is_found_by_the_dense_half(
    model: StaticEmbedder,
) -> None:
    # Given an index with vectors, and a question sharing no word with the answer
    index = LocalIndex(_index(model), model, "fused")
    question = "Can I pay by credit card?"

    # When it is searched lexically, densely and fused, in English
    english = SearchFilter(language="en")
    lexical = LocalIndex(_index(model), model, "lexical").search(question, english, 3)
    dense = LocalIndex(_index(model), model, "dense").search(question, english, 3)
    fused = index.search(question, english, 3)

    # Then BM25 misses the payment page, the dense half ranks it first, and so does the fusion
    assert "payment.md" not in [p.source for p in lexical]
    assert dense[0].source == "payment.md"
    assert fused[0].source == "payment.md"
    assert index.mode == "fused" and index.dense_status.startswith("on (wordllama")


def test_dense_and_fused_results_stay_inside_the_filter() -> None:
    # Given an index whose vectors put "parcel" texts on one axis
    index = LocalIndex(_index(Axes()), Axes(), "fused")

    # When a question about a tent is searched in German products, and in English orders
    german = index.search("tent Zelt", SearchFilter(category="products", language="de"), 5)
    orders = index.search("tent Zelt", SearchFilter(category="orders", language="en"), 5)

    # Then only the German product is found, and nothing among English orders matches
    assert [p.source for p in german] == ["zelte.md"]
    assert orders == []


def test_a_chunk_ranked_first_by_both_scores_one() -> None:
    # Given an index where a word and a vector point at the same chunk
    index = LocalIndex(_index(Axes()), Axes(), "fused")

    # When it is searched
    found = index.search("parcel warehouse", SearchFilter(language="en"), 3)

    # Then that chunk comes first with the best fused score, 1.0, and every score is at most 1
    assert found[0].source == "shipping.md"
    assert found[0].score == 1.0
    assert all(0 < p.score <= 1 for p in found)


def test_without_vectors_the_index_searches_lexically_and_says_why() -> None:
    # Given an index file without vectors, and one whose vectors another model made
    plain = LocalIndex(_index(None), Axes(), "fused")
    other = Axes()
    other.model = "axes@2"
    foreign = LocalIndex(_index(Axes()), other, "fused")

    # When each is searched
    found = plain.search("Cirrus tent", SearchFilter(), 2)

    # Then both are lexical (BM25 scores), and their status says why the dense half is off
    assert plain.mode == foreign.mode == "lexical"
    assert found[0].source in ("tents.md", "zelte.md") and found[0].score > 1
    assert "no vectors" in plain.dense_status
    assert "axes@1" in foreign.dense_status and "axes@2" in foreign.dense_status


def test_load_index_calls_the_model_only_when_the_file_has_vectors(tmp_path: Path) -> None:
    # Given an index file without vectors, and a model loader that counts its calls
    calls: list[str] = []

    def loader() -> Axes:
        calls.append("loaded")
        return Axes()

    write_index(_index(None), tmp_path / "plain.json")
    write_index(_index(Axes()), tmp_path / "dense.json")

    # When each file is loaded with the loader
    plain = load_index(str(tmp_path / "plain.json"), dense=loader)
    dense = load_index(str(tmp_path / "dense.json"), dense=loader)

    # Then the model is loaded for the file with vectors only, and that index fuses
    assert calls == ["loaded"]
    assert (plain.mode, dense.mode) == ("lexical", "fused")


def test_a_missing_dense_extra_leaves_the_search_lexical(tmp_path: Path) -> None:
    # Given an index file with vectors, where the dense extra is not installed
    write_index(_index(Axes()), tmp_path / "index.json")

    def missing() -> Axes:
        raise DenseUnavailableError("numpy not installed (pip install 'concierge[dense]')")

    # When it is loaded
    index = load_index(str(tmp_path / "index.json"), dense=missing)

    # Then it searches lexically, and says the extra is missing
    assert index.mode == "lexical"
    assert index.dense_status == "off: numpy not installed (pip install 'concierge[dense]')"
    assert index.search("Cirrus tent", SearchFilter(language="en"), 1)[0].source == "tents.md"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("CONCIERGE_RETRIEVER", "local")
    monkeypatch.setenv("CONCIERGE_INDEX_URI", str(tmp_path / "index.json"))
    wiring.reset()
    yield tmp_path
    wiring.reset()


def test_the_chain_fuses_when_the_index_has_vectors(
    environment: Path, model: StaticEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an index ingested with the dense model
    write_index(_index(model), environment / "index.json")

    # When the chain's retriever is built from the settings, then with the mode set to lexical
    fused = wiring.retriever()
    monkeypatch.setenv("CONCIERGE_SEARCH_MODE", "lexical")
    wiring.reset()
    lexical = wiring.retriever()

    # Then the first fuses both rankings, the second does not
    assert isinstance(fused, LocalIndex) and isinstance(lexical, LocalIndex)
    assert (fused.mode, lexical.mode) == ("fused", "lexical")


def test_vectors_that_cannot_be_used_are_said_once_on_stderr_and_stdout_stays_clean(
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an index with vectors, in a process without the dense extra
    write_index(_index(Axes()), environment / "index.json")

    def missing() -> Axes:
        raise DenseUnavailableError("numpy not installed (pip install 'concierge[dense]')")

    monkeypatch.setattr(wiring, "dense_embedder", missing)

    # When the chain's retriever is built, and asked for again
    first = wiring.retriever()
    again = wiring.retriever()

    # Then it searches lexically, one warning says why, and nothing is printed on stdout (a
    # command's --json output)
    assert first is again and isinstance(first, LocalIndex) and first.mode == "lexical"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "local search is lexical only: off: numpy not installed (pip install 'concierge[dense]')"
    ]
    assert capsys.readouterr().out == ""


def test_an_index_without_vectors_is_lexical_without_a_warning(
    environment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an index ingested without vectors
    write_index(_index(None), environment / "index.json")

    # When the chain's retriever is built
    index = wiring.retriever()

    # Then it is lexical, and that is no news worth a warning
    assert isinstance(index, LocalIndex) and index.mode == "lexical" and not index.dense_lost
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
