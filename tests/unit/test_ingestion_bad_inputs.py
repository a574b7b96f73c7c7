"""Bad input never crashes an ingest: each bad file is skipped with its reason, the rest go in."""

from __future__ import annotations

from pathlib import Path

import pytest

from concierge_cli.ingestion import IngestOptions, PathNotFoundError, Status, ingest, readers
from concierge_cli.ingestion.report import FileOutcome


def _kb(tmp_path: Path) -> Path:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "good.md").write_text("# Tents\nThe Cirrus 2 sleeps two.", encoding="utf-8")
    (kb / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    (kb / "latin1.txt").write_bytes("Grüße aus Innsbruck".encode("latin-1"))
    (kb / "slides.pptx").write_bytes(b"PK\x03\x04")
    (kb / "blank.md").write_text("\n\n   \n", encoding="utf-8")
    (kb / "huge.txt").write_text("word " * 300_000, encoding="utf-8")  # 1.4 MB
    (kb / "locked.md").write_text("# Secret\nNot for us.", encoding="utf-8")
    return kb


def _skips(files: list[FileOutcome]) -> dict[str, str]:
    return {f.source: f.reason for f in files if f.status is Status.SKIPPED}


def test_each_bad_file_is_skipped_with_a_clear_reason_and_the_good_one_is_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a knowledge base with one good file and one of each kind of bad file, one of them
    # locked against reading
    kb = _kb(tmp_path)
    original = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "locked.md":
            raise PermissionError(13, "Permission denied")
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    # When it is ingested with a 1 MB limit
    result = ingest([kb], IngestOptions(max_file_bytes=1024 * 1024))

    # Then each bad file is skipped with its reason, and only the good one is indexed
    assert _skips(result.report.files) == {
        "blank.md": "empty",
        "huge.txt": "too large",
        "image.md": "unreadable",
        "latin1.txt": "unreadable",
        "locked.md": "unreadable",
        "slides.pptx": "unknown format",
    }
    assert [c.source for c in result.index.chunks] == ["good.md"]

    # And the report explains each skip
    lines = "\n".join(result.report.lines())
    assert "huge.txt  too large: 1.4 MB, over the 1 MB limit (--max-file-mb)" in lines
    assert "locked.md  unreadable: Permission denied" in lines
    assert "latin1.txt  unreadable: not UTF-8 text" in lines
    assert "slides.pptx  unknown format: '.pptx' is not one of" in lines


def test_a_reader_that_breaks_on_one_file_costs_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a good Markdown file, and an HTML file whose reader breaks
    (tmp_path / "a.md").write_text("# A\nFine.", encoding="utf-8")
    (tmp_path / "b.html").write_text("<h1>B</h1><p>Breaks the parser.</p>", encoding="utf-8")

    def broken(raw: bytes) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setitem(readers._READERS, ".html", broken)

    # When the folder is ingested
    result = ingest([tmp_path])

    # Then only the HTML file is skipped, with the error, and the other is indexed
    (skipped,) = [f for f in result.report.files if f.status is Status.SKIPPED]
    assert skipped.source == "b.html"
    assert skipped.detail == "could not be parsed (IndexError: list index out of range)"
    assert [c.source for c in result.index.chunks] == ["a.md"]


def test_hidden_files_and_folder_readmes_are_not_documents_but_a_named_readme_is(
    tmp_path: Path,
) -> None:
    # Given a folder with a README, a hidden file, a hidden folder and one document
    (tmp_path / "README.md").write_text("# About this folder", encoding="utf-8")
    (tmp_path / ".draft.md").write_text("# Draft", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main", encoding="utf-8")
    (tmp_path / "doc.md").write_text("# Doc\nText.", encoding="utf-8")

    # When the folder is ingested, and then the README by name
    from_folder = ingest([tmp_path])
    by_name = ingest([tmp_path / "README.md"])

    # Then the folder gives only the document, and the named README is read
    assert [f.source for f in from_folder.report.files] == ["doc.md"]
    assert [f.source for f in by_name.report.files] == ["README.md"]


def test_two_files_with_the_same_source_name_are_not_merged(tmp_path: Path) -> None:
    # Given two folders, each with its own faq.md
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "faq.md").write_text(f"# FAQ {folder}\nText.", encoding="utf-8")

    # When both folders are ingested together
    result = ingest([tmp_path / "one", tmp_path / "two"])

    # Then the second is skipped as a name clash, and only the first is indexed
    clash = [f for f in result.report.files if f.reason == "name clash"]
    assert len(clash) == 1
    assert "two/faq.md has the same source name as" in clash[0].detail
    assert [c.title for c in result.index.chunks] == ["FAQ one"]


def test_a_path_that_does_not_exist_is_an_error_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a folder with a document, a path that does not exist, and a record of every read
    (tmp_path / "doc.md").write_text("# Doc\nText.", encoding="utf-8")
    paths = [tmp_path, tmp_path / "missing"]
    read: list[str] = []
    original = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        read.append(path.name)
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)

    # When / Then ingesting them is an error naming the missing path
    with pytest.raises(PathNotFoundError, match="missing"):
        ingest(paths)

    # And not even the existing document was read
    assert read == []
