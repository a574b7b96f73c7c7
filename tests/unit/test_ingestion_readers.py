"""Readers: each format becomes Markdown text plus what the file declares about itself."""

from __future__ import annotations

import sys

import pytest

from concierge_cli.ingestion.readers import (
    EMPTY,
    MISSING_DEPENDENCY,
    UNKNOWN_FORMAT,
    UNREADABLE,
    SkipDocument,
    read_document,
)


def tiny_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A one-page PDF with Helvetica text lines, built by hand (offsets and all)."""
    text_ops = " T* ".join(f"({line}) Tj" for line in lines)
    content = f"BT /F1 12 Tf 14 TL 20 120 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 160] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    if title:
        objects.append(b"<< /Title (" + title.encode() + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info 6 0 R" if title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        info,
        xref,
    )
    return bytes(out)


def test_markdown_front_matter_is_metadata_not_text() -> None:
    # Given a Markdown file that starts with front matter (and has Windows line endings)
    raw = b"---\ntitle: Returns\ncategory: Policies\nlanguage: en\n---\n# Returns\r\nWithin 30 days.\n"

    # When it is read
    document = read_document(raw, ".md")

    # Then the front matter is what it declares, and the text is the rest, tidied
    assert document.declared == {"title": "Returns", "category": "Policies", "language": "en"}
    assert document.text == "# Returns\nWithin 30 days."


def test_plain_text_is_read_as_is_with_a_byte_order_mark_dropped() -> None:
    # Given a text file with a byte order mark, blank lines and trailing spaces
    raw = "\ufeffLine one.\n\n\n\nLine two.   \n".encode()

    # When it is read
    document = read_document(raw, ".txt")

    # Then the text is as written, without the mark and the extra blanks, declaring nothing
    assert document.text == "Line one.\n\nLine two."
    assert document.declared == {}


def test_html_keeps_headings_lists_and_declared_metadata_and_drops_scripts() -> None:
    # Given an HTML page with metadata, navigation, styles, a list, a table and a script
    raw = b"""<!doctype html>
    <html lang="de-AT"><head><title>Versand &amp; Lieferung</title>
    <meta name="category" content="shipping"><style>h1 {color: red}</style></head>
    <body><nav><a href="/">Home</a></nav>
    <h1>Versand</h1><p>Wir liefern
       in <b>zwei</b> Tagen.<br>Auch samstags.</p>
    <h2>Kosten</h2><ul><li>Standard: 4,90 &euro;</li><li>Express: 9,90 &euro;</li></ul>
    <table><tr><th>Land</th><th>Tage</th></tr><tr><td>AT</td><td>2</td></tr></table>
    <script>track("x")</script></body></html>"""

    # When it is read
    document = read_document(raw, ".html")

    # Then its content becomes Markdown, and its language, category and title are declared
    assert document.text == (
        "# Versand\n\nWir liefern in zwei Tagen.\nAuch samstags.\n\n## Kosten\n\n"
        "- Standard: 4,90 €\n- Express: 9,90 €\n\nLand | Tage\n\nAT | 2"
    )
    assert document.declared == {
        "language": "de-AT",
        "category": "shipping",
        "title": "Versand & Lieferung",
    }


def test_pdf_text_and_title_are_extracted() -> None:
    # Given a PDF with two lines of text and a title (and pypdf to read it)
    pytest.importorskip("pypdf")
    raw = tiny_pdf(["Tents sleep two.", "Pegs included."], "Tents")

    # When it is read
    document = read_document(raw, ".pdf")

    # Then both lines are in the text, and the title is declared
    assert "Tents sleep two." in document.text
    assert "Pegs included." in document.text
    assert document.declared == {"title": "Tents"}


def test_a_pdf_is_skipped_with_a_hint_when_pypdf_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given pypdf cannot be imported
    monkeypatch.setitem(sys.modules, "pypdf", None)  # `import pypdf` raises ImportError

    # When a PDF is read
    with pytest.raises(SkipDocument) as skipped:
        read_document(tiny_pdf(["Hello."]), ".pdf")

    # Then it is skipped for a missing dependency, with a hint to install it
    assert skipped.value.reason == MISSING_DEPENDENCY
    assert "install pypdf" in skipped.value.detail


@pytest.mark.parametrize(
    ("raw", "suffix", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ".md", UNREADABLE),  # binary
        ("Grüße".encode("latin-1"), ".txt", UNREADABLE),  # not UTF-8
        (b"%PDF-1.4\nnot really a pdf", ".pdf", UNREADABLE),
        (b"", ".md", EMPTY),
        (b"  \n\n\t\n", ".txt", EMPTY),
        (b"---\ntitle: Only metadata\n---\n", ".md", EMPTY),
        (
            b"<html><head><title>T</title></head><body><script>x()</script></body></html>",
            ".html",
            EMPTY,
        ),
        (b"some text", ".docx", UNKNOWN_FORMAT),
        (b"some text", "", UNKNOWN_FORMAT),
    ],
    ids=[
        "binary",
        "latin-1",
        "broken-pdf",
        "zero-bytes",
        "whitespace",
        "front-matter-only",
        "html-without-text",
        "docx",
        "no-extension",
    ],
)
def test_unusable_files_are_refused_with_a_reason(raw: bytes, suffix: str, reason: str) -> None:
    # Given a file that is binary, not UTF-8, empty, of an unknown format or a broken PDF
    if suffix == ".pdf":
        pytest.importorskip("pypdf")

    # When it is read
    with pytest.raises(SkipDocument) as skipped:
        read_document(raw, suffix)

    # Then it is refused with the reason, which the message starts with
    assert skipped.value.reason == reason
    assert str(skipped.value).startswith(reason)
