"""De-duplication: a copied document and a repeated section are in the index once, and said so."""

from __future__ import annotations

from pathlib import Path

from concierge_cli.ingestion import Status, ingest

BOILERPLATE = "## Contact\nWrite to help@alpenglow.example or call +43 512 000 000."


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_a_copied_document_is_reported_and_left_out(tmp_path: Path) -> None:
    # Given a document and a copy of it that differs in whitespace only
    _write(tmp_path, "a-tents.md", "# Tents\nThe Cirrus 2 sleeps two.")
    _write(tmp_path, "b-tents-copy.md", "# Tents\n\nThe  Cirrus 2 sleeps two.\n")

    # When the folder is ingested
    result = ingest([tmp_path])

    # Then the copy is reported as a duplicate of the original, and only the original goes in
    statuses = {f.source: (f.status, f.detail) for f in result.report.files}
    assert statuses["b-tents-copy.md"] == (Status.DUPLICATE, "same text as a-tents.md")
    assert {c.source for c in result.index.chunks} == {"a-tents.md"}
    assert result.manifest.published() == {"a-tents.md"}


def test_a_repeated_chunk_is_kept_once_and_counted(tmp_path: Path) -> None:
    # Given two documents that end with the same contact section
    _write(tmp_path, "a.md", f"# Tents\nThe Cirrus 2 sleeps two.\n{BOILERPLATE}")
    _write(
        tmp_path, "b.md", f"# Stoves\nThe Flare stove boils a litre in 3 minutes.\n{BOILERPLATE}"
    )

    # When the folder is ingested
    result = ingest([tmp_path])

    # Then the section is indexed once, and the dropped copy is named in the report
    texts = [c.text for c in result.index.chunks]
    assert texts.count(BOILERPLATE) == 1
    assert len(texts) == 3
    assert result.report.duplicate_chunks == [("b.md#2", "a.md#2")]
    assert any(
        "1 duplicate chunk(s) dropped: b.md#2 = a.md#2" in line for line in result.report.lines()
    )


def test_when_the_original_goes_the_copy_takes_its_place(tmp_path: Path) -> None:
    # Given a document and its copy, ingested, and then the original deleted
    _write(tmp_path, "a.md", "# Tents\nThe Cirrus 2 sleeps two.")
    _write(tmp_path, "b.md", "# Tents\nThe Cirrus 2 sleeps two.")
    first = ingest([tmp_path])
    (tmp_path / "a.md").unlink()

    # When the folder is ingested again
    second = ingest([tmp_path], previous=first.manifest)

    # Then the copy is indexed and published in the original's place, which is withdrawn
    assert {c.source for c in second.index.chunks} == {"b.md"}
    assert second.to_publish() == ["b.md"]
    assert second.to_withdraw() == ["a.md"]
