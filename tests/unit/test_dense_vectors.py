"""The dense part of the index: the static model shipped in the wordllama wheel, the chunk
vectors packed as int8 into the index file, and ingest computing only the vectors it lacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from concierge import wiring
from concierge.adapters.embeddings import static
from concierge.adapters.embeddings.static import (
    DenseUnavailableError,
    StaticEmbedder,
    load_static_embedder,
    model_identity,
)
from concierge.adapters.retrieval.vectors import (
    VectorsMismatchError,
    embedded_text,
    pack,
    quantised,
    unpack,
)
from concierge.knowledge import Chunk, IndexFile
from concierge_cli.ingestion import IngestOptions, ingest
from concierge_cli.main import main


@pytest.fixture(scope="module")
def model() -> StaticEmbedder:
    return load_static_embedder()


class CountingEmbedder:
    """A stand-in model that counts the texts it is asked to embed."""

    model = "counting@1"
    dimensions = 4

    def __init__(self) -> None:
        self.texts: list[str] = []

    def vectors(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        rows = np.array([[len(t), t.count(" "), t.count("e"), 1.0] for t in texts], np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    for name, text in {
        "tents.md": "# Tents\nThe Cirrus 2 sleeps two.",
        "stoves.md": "# Stoves\nThe Flare boils a litre in three minutes.",
        "shipping.md": "# Shipping\nParcels arrive in two days.",
    }.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_paraphrase_is_nearer_than_an_unrelated_text(model: StaticEmbedder) -> None:
    # Given a question, a passage that answers it in other words, and one about something else
    texts = [
        "Can I pay with a credit card?",
        "We accept Visa, Mastercard, PayPal and bank transfer.",
        "Our tents are pitched in five minutes.",
    ]

    # When they are embedded
    question, answer, unrelated = model.vectors(texts)

    # Then the vectors are unit length, and the answer is the nearer by a clear margin
    assert np.allclose(np.linalg.norm([question, answer, unrelated], axis=1), 1.0, atol=1e-5)
    assert float(question @ answer) > float(question @ unrelated) + 0.2


def test_the_same_text_gives_the_same_vector_and_an_empty_one_the_zero_vector(
    model: StaticEmbedder,
) -> None:
    # Given a text twice, in one call and in another, and an empty text
    # When they are embedded
    first = model.vectors(["Where is my parcel?", ""])
    second = model.embed(["Where is my parcel?"])

    # Then the same text has the same vector, and the empty one is zero (similar to nothing)
    assert np.allclose(first[0], second[0])
    assert not first[1].any()
    assert model.dimensions == 256


def test_the_model_is_named_by_its_weights_and_what_its_tokenizer_does(
    model: StaticEmbedder,
) -> None:
    # Given the tokenizer file of the installed model, and the same tokenizer written otherwise
    _, tokenizer_path = static.model_files()
    parsed = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    reformatted = json.loads(json.dumps(parsed, indent=4))

    # When the identity is computed from other weights, and from the reformatted file
    other_weights = model_identity(b"other weights", parsed)

    # Then formatting does not change it, other weights do, and it starts with the model's name
    assert model.model.startswith(static.MODEL_NAME + "@")
    weights = static.model_files()[0].read_bytes()
    assert model_identity(weights, reformatted) == model.model
    assert other_weights != model.model


def test_without_the_dense_extra_loading_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a process where numpy and wordllama are not installed
    real = static.find_spec
    monkeypatch.setattr(
        static,
        "find_spec",
        lambda name: None if name in ("numpy", "wordllama") else real(name),
    )

    # When the model is loaded
    with pytest.raises(DenseUnavailableError) as raised:
        load_static_embedder()

    # Then the error names the missing packages and the extra to install
    assert "numpy, wordllama not installed" in str(raised.value)
    assert "concierge[dense]" in str(raised.value)


def test_int8_vectors_rank_like_the_float_ones(model: StaticEmbedder) -> None:
    # Given float vectors of a few passages and a question
    passages = model.vectors(
        [
            "Returns are free within 30 days.",
            "The Cirrus 2 tent sleeps two people.",
            "Delivery to Austria takes three days.",
            "",
        ]
    )
    question = model.vectors(["How long does shipping to Austria take?"])[0]

    # When they are packed as int8 into an index's field and read back
    packed = pack(model.model, quantised(passages))
    restored = unpack(packed, rows=4)

    # Then each row is within a hair of the original, the order of scores is the same, and the
    # zero row stays zero
    assert len(packed.vectors) == len(pack(model.model, quantised(passages)).vectors)
    assert np.allclose(restored @ question, passages @ question, atol=0.01)
    assert list(np.argsort(restored @ question)) == list(np.argsort(passages @ question))
    assert not restored[3].any()
    with pytest.raises(VectorsMismatchError):
        unpack(packed, rows=5)


def test_an_index_written_before_vectors_still_loads() -> None:
    # Given an index file of the format without vectors
    old = {"format_version": 1, "kb_version": "abc", "chunks": []}

    # When it is read
    index = IndexFile.model_validate_json(json.dumps(old))

    # Then it loads, with no vectors
    assert index.embeddings is None


def test_ingest_embeds_every_chunk_once_and_then_only_the_changed_ones(kb: Path) -> None:
    # Given a folder ingested with a model
    embedder = CountingEmbedder()
    first = ingest([kb], embedder=embedder)
    embedded_first = list(embedder.texts)
    embedder.texts.clear()

    # When one document changes and it is ingested again with the previous index
    (kb / "stoves.md").write_text("# Stoves\nThe Flare boils a litre in two minutes.", "utf-8")
    second = ingest([kb], previous=first.manifest, embedder=embedder, previous_index=first.index)

    # Then the first run embedded every chunk; the second only the changed one, reusing the rest
    assert sorted(embedded_first) == sorted(embedded_text(c) for c in first.index.chunks)
    assert embedder.texts == [
        embedded_text(c) for c in second.index.chunks if c.source == "stoves.md"
    ]
    counts = second.report.vectors
    assert counts is not None and (counts.embedded, counts.reused) == (1, 2)
    assert second.report.vectors_line() == ("dense vectors (counting@1): 1 embedded, 2 reused")
    stored = second.index.embeddings
    assert stored is not None and stored.model == "counting@1" and stored.dimensions == 4
    fresh = quantised(CountingEmbedder().vectors([embedded_text(c) for c in second.index.chunks]))
    assert stored == pack("counting@1", fresh)


def test_vectors_of_another_model_are_not_reused(kb: Path) -> None:
    # Given an index whose vectors another model made
    first = ingest([kb], embedder=CountingEmbedder())
    other = CountingEmbedder()
    other.model = "counting@2"

    # When the folder is ingested again with this model and the previous index
    second = ingest([kb], previous=first.manifest, embedder=other, previous_index=first.index)

    # Then every chunk is embedded again, by this model
    assert second.report.vectors is not None
    assert (second.report.vectors.embedded, second.report.vectors.reused) == (3, 0)
    assert second.index.embeddings is not None
    assert second.index.embeddings.model == "counting@2"


def test_without_a_model_the_index_has_no_vectors(kb: Path) -> None:
    # Given no dense model
    # When a folder is ingested
    result = ingest([kb], IngestOptions())

    # Then the index carries no vectors and the report says search is lexical only
    assert result.index.embeddings is None
    assert result.report.vectors_line() == "no dense vectors: search is lexical only"


def test_the_ingest_command_reports_vectors_embedded_then_reused(
    tmp_path: Path, kb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a folder ingested once
    wiring.reset()
    main(["--root", str(tmp_path), "ingest", "kb"])
    first = capsys.readouterr().out

    # When it is ingested again, every file read again
    main(["--root", str(tmp_path), "ingest", "kb", "--full"])
    second = capsys.readouterr().out

    # Then the first run embedded the three chunks and the second reused them all
    assert f"dense vectors ({static.MODEL_NAME}@" in first
    assert ": 3 embedded, 0 reused" in first
    assert ": 0 embedded, 3 reused" in second
    index = IndexFile.model_validate_json((tmp_path / ".concierge" / "index.json").read_bytes())
    assert index.embeddings is not None and index.embeddings.dimensions == 256


def test_the_ingest_command_can_leave_vectors_out(
    tmp_path: Path, kb: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a folder
    # When it is ingested with --no-vectors
    exit_code = main(["--root", str(tmp_path), "ingest", "kb", "--no-vectors"])

    # Then the index has no vectors, and the command says search is lexical only
    assert exit_code == 0
    assert "no dense vectors: search is lexical only" in capsys.readouterr().out
    index = IndexFile.model_validate_json((tmp_path / ".concierge" / "index.json").read_bytes())
    assert index.embeddings is None


def test_a_chunk_embeds_its_title_and_text() -> None:
    # Given a chunk
    chunk = Chunk(
        source="a.md", title="Tents", text="## Cirrus\nSleeps two.", category="c", language="en"
    )

    # When its embedded text is taken
    # Then it is the title, then the text with its heading
    assert embedded_text(chunk) == "Tents\n## Cirrus\nSleeps two."
