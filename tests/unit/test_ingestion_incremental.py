"""Incremental re-ingest: unchanged files are not read again, removed ones leave, and the
knowledge-base version moves exactly when the content does."""

from __future__ import annotations

from pathlib import Path

import pytest

from concierge_cli.ingestion import IngestOptions, Status, ingest, pipeline
from concierge_cli.ingestion.manifest import parse_manifest
from concierge_cli.ingestion.readers import Document


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


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first line of every file read as a document, in order."""
    seen: list[str] = []
    real = pipeline.read_document

    def spy(raw: bytes, suffix: str) -> Document:
        seen.append(raw.decode().splitlines()[0])
        return real(raw, suffix)

    monkeypatch.setattr(pipeline, "read_document", spy)
    return seen


def _statuses(result: pipeline.IngestResult) -> dict[str, Status]:
    return {f.source: f.status for f in result.report.files}


def test_nothing_changed_nothing_is_read_and_the_version_stays(kb: Path, reads: list[str]) -> None:
    # Given a folder already ingested
    first = ingest([kb])
    reads.clear()

    # When it is ingested again, unchanged, with the manifest of the first run
    second = ingest([kb], previous=first.manifest)

    # Then no file is read, every one is unchanged, and so are the index and its version
    assert reads == []
    assert set(_statuses(second).values()) == {Status.UNCHANGED}
    assert second.index == first.index
    assert second.report.kb_version == first.report.kb_version
    assert not second.report.changed
    assert second.report.summary().endswith(f"version {first.report.kb_version} (unchanged)")


def test_only_the_changed_file_is_read_again_and_the_version_moves(
    kb: Path, reads: list[str]
) -> None:
    # Given a folder already ingested, and then one document edited
    first = ingest([kb])
    (kb / "stoves.md").write_text("# Stoves\nThe Flare boils a litre in two minutes.", "utf-8")
    reads.clear()

    # When it is ingested again
    second = ingest([kb], previous=first.manifest)

    # Then only the edited document is read, it alone is changed, and the version moves
    assert reads == ["# Stoves"]
    assert _statuses(second) == {
        "shipping.md": Status.UNCHANGED,
        "stoves.md": Status.CHANGED,
        "tents.md": Status.UNCHANGED,
    }
    assert second.report.kb_version != first.report.kb_version
    assert "two minutes" in " ".join(c.text for c in second.index.chunks)


def test_a_removed_file_is_dropped_and_reported(kb: Path) -> None:
    # Given a folder already ingested, and then one document deleted
    first = ingest([kb])
    (kb / "tents.md").unlink()

    # When it is ingested again
    second = ingest([kb], previous=first.manifest)

    # Then the document is reported removed, leaves the index and manifest, and the version moves
    assert _statuses(second)["tents.md"] is Status.REMOVED
    assert {c.source for c in second.index.chunks} == {"shipping.md", "stoves.md"}
    assert "tents.md" not in second.manifest.sources
    assert second.report.kb_version != first.report.kb_version


def test_a_new_file_is_added_and_the_version_moves(kb: Path, reads: list[str]) -> None:
    # Given a folder already ingested, and then a document added
    first = ingest([kb])
    (kb / "maps.txt").write_text("Maps of the Alps are free in the shop.", encoding="utf-8")
    reads.clear()

    # When it is ingested again
    second = ingest([kb], previous=first.manifest)

    # Then only the new document is read, it is reported new, and the version moves
    assert reads == ["Maps of the Alps are free in the shop."]
    assert _statuses(second)["maps.txt"] is Status.NEW
    assert second.report.kb_version != first.report.kb_version


def test_a_file_that_became_unusable_is_dropped_with_its_reason(kb: Path) -> None:
    # Given a folder already ingested, and then one document overwritten with binary data
    first = ingest([kb])
    (kb / "tents.md").write_bytes(b"\x00\x01binary now")

    # When it is ingested again
    second = ingest([kb], previous=first.manifest)

    # Then the document is skipped as unreadable, said to be dropped, and is out of the index
    (tents,) = [f for f in second.report.files if f.source == "tents.md"]
    assert (tents.status, tents.reason) == (Status.SKIPPED, "unreadable")
    assert tents.detail.endswith("dropped from the knowledge base")
    assert "tents.md" not in {c.source for c in second.index.chunks}


def test_other_chunking_settings_read_everything_again(kb: Path, reads: list[str]) -> None:
    # Given a folder already ingested with the default settings
    first = ingest([kb])
    reads.clear()

    # When it is ingested again with another overlap
    second = ingest([kb], IngestOptions(overlap_chars=50), previous=first.manifest)

    # Then all three documents are read and re-chunked, and the report says why
    assert len(reads) == 3
    assert {f.detail for f in second.report.files} == {"re-chunked: the ingest settings changed"}


def test_reuse_can_be_turned_off(kb: Path, reads: list[str]) -> None:
    # Given a folder already ingested
    first = ingest([kb])
    reads.clear()

    # When it is ingested again with reuse turned off
    second = ingest([kb], previous=first.manifest, reuse=False)

    # Then all three documents are read, and the version is the same as before
    assert len(reads) == 3
    assert second.report.kb_version == first.report.kb_version


def test_the_version_does_not_depend_on_the_order_files_are_found_in(kb: Path) -> None:
    # When the same two documents are ingested, named in one order and then the other
    forward = ingest([kb / "tents.md", kb / "stoves.md"])
    backward = ingest([kb / "stoves.md", kb / "tents.md"])

    # Then both runs give the same version
    assert forward.report.kb_version == backward.report.kb_version


def test_a_manifest_of_another_format_means_a_full_ingest() -> None:
    # When a manifest of an unknown format version, and one that is not JSON, are parsed
    future = parse_manifest(
        b'{"format_version": 99, "settings": "", "kb_version": "", "sources": {}}'
    )
    garbage = parse_manifest(b"not json")

    # Then neither gives a manifest, so nothing is reused
    assert future is None
    assert garbage is None
