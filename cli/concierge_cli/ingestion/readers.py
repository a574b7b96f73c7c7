"""One reader per format: file bytes in, normalised Markdown-ish text and declared metadata out.

A reader never guesses metadata: it returns what the file itself declares (front matter, an
HTML `<title>`, `<html lang>` or `<meta name="category">`, a PDF's title) and leaves the rest to
`metadata`. Anything that makes a file unusable raises `SkipDocument` with a reason the
per-file report prints.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from concierge_cli.ingestion.metadata import split_front_matter

MARKDOWN = frozenset({".md", ".markdown"})
TEXT = frozenset({".txt"})
HTML = frozenset({".html", ".htm"})
PDF = frozenset({".pdf"})
SUPPORTED = MARKDOWN | TEXT | HTML | PDF

# Reasons of the per-file report.
UNREADABLE = "unreadable"
UNKNOWN_FORMAT = "unknown format"
EMPTY = "empty"
TOO_LARGE = "too large"
MISSING_DEPENDENCY = "missing dependency"


class SkipDocument(Exception):
    """This file cannot become part of the knowledge base; the run goes on without it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Document:
    """A document's body as Markdown (headings as `#` lines) and what the file declares."""

    text: str
    declared: dict[str, str] = field(default_factory=dict)


def read_document(raw: bytes, suffix: str) -> Document:
    """Read `raw` as the format its file suffix names."""
    check_format(suffix)
    document = _READERS[suffix.lower()](raw)
    if not document.text.strip():
        raise SkipDocument(EMPTY, "no text")
    return document


def read_markdown(raw: bytes) -> Document:
    declared, body = split_front_matter(_decode(raw))
    if not body.strip():
        raise SkipDocument(EMPTY, "front matter only" if declared else "no text")
    return Document(normalise(body), declared)


# Plain text may carry the same front matter; without it, it is one or more paragraphs.
read_text = read_markdown


def read_html(raw: bytes) -> Document:
    parser = _HtmlToMarkdown()
    parser.feed(_decode(raw))
    parser.close()
    return Document(normalise(parser.markdown()), parser.declared)


def read_pdf(raw: bytes) -> Document:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise SkipDocument(MISSING_DEPENDENCY, "install pypdf to ingest PDF files") from None
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise SkipDocument(UNREADABLE, "encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except PyPdfError as error:
        raise SkipDocument(UNREADABLE, f"not a readable PDF ({error})") from None
    text = normalise("\n\n".join(pages))
    if not text:
        raise SkipDocument(EMPTY, "no extractable text (a scanned PDF?)")
    return Document(text, {"title": title.strip()} if title.strip() else {})


_READERS: dict[str, Callable[[bytes], Document]] = {
    **dict.fromkeys(MARKDOWN, read_markdown),
    **dict.fromkeys(TEXT, read_text),
    **dict.fromkeys(HTML, read_html),
    **dict.fromkeys(PDF, read_pdf),
}


def check_format(suffix: str) -> None:
    """Refuse a file suffix no reader handles (before reading the file)."""
    if suffix.lower() not in _READERS:
        raise SkipDocument(
            UNKNOWN_FORMAT,
            f"'{suffix or '(no extension)'}' is not one of {', '.join(sorted(SUPPORTED))}",
        )


def _decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise SkipDocument(UNREADABLE, "binary content, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SkipDocument(UNREADABLE, f"not UTF-8 text (byte {error.start})") from None


_BLANK_RUNS = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFC, `\\n` line ends, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


class _HtmlToMarkdown(HTMLParser):
    """Visible text of an HTML page as Markdown blocks: `<h1>` to `<h6>` become `#` headings,
    list items `- ` lines, other block elements paragraphs. Scripts, styles and navigation
    are dropped."""

    _SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "nav", "head"})
    _BLOCKS = frozenset(
        {
            "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
            "pre", "ul", "ol", "dl", "dt", "dd", "table", "tr", "figure", "figcaption", "hr",
            "address", "details", "summary", "form", "fieldset",
        }
    )  # fmt: skip
    _HEADINGS = {f"h{level}": level for level in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.declared: dict[str, str] = {}
        self._blocks: list[tuple[str, str]] = []  # (kind, text)
        self._line: list[str] = []
        self._kind = "p"
        self._skip_depth = 0
        self._in_title = False
        self._title: list[str] = []
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html" and values.get("lang"):
            self.declared.setdefault("language", values["lang"])
        elif tag == "meta" and values.get("name", "").lower() in ("category", "language"):
            self.declared.setdefault(values["name"].lower(), values.get("content", ""))
        elif tag == "title":
            self._in_title = True
        if tag in self._SKIPPED:
            self._skip_depth += 1
        elif tag in self._HEADINGS:
            self._flush()
            self._kind = "#" * self._HEADINGS[tag]
        elif tag == "li":
            self._flush()
            self._kind = "li"
        elif tag == "br":
            self._line.append("\n")
        elif tag in ("td", "th") and "".join(self._line).strip():
            self._line.append(" | ")
        elif tag == "body":
            self._skip_depth = 0  # a <head> left open ends here
        elif tag in self._BLOCKS:
            self._flush()
            self._pre_depth += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._HEADINGS or tag == "li" or tag in self._BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif not self._skip_depth:
            # Source line breaks are spaces in HTML; only <br> and blocks break lines.
            self._line.append(data if self._pre_depth else _SPACES.sub(" ", data))

    def close(self) -> None:
        super().close()
        self._flush()
        title = " ".join("".join(self._title).split())
        if title:
            self.declared.setdefault("title", title)

    def markdown(self) -> str:
        out: list[str] = []
        for position, (kind, text) in enumerate(self._blocks):
            if position:
                both_items = kind == "li" and self._blocks[position - 1][0] == "li"
                out.append("\n" if both_items else "\n\n")
            if kind == "li":
                out.append(f"- {text}")
            elif kind.startswith("#"):
                out.append(f"{kind} {text}")
            else:
                out.append(text)
        return "".join(out)

    def _flush(self) -> None:
        raw = "".join(self._line)
        self._line = []
        kind, self._kind = self._kind, "p"
        if self._pre_depth:
            text = raw.strip("\n")
        else:
            lines = (" ".join(part.split()) for part in raw.split("\n"))
            text = "\n".join(line for line in lines if line)
        if kind.startswith("#"):
            text = " ".join(text.split())
        if text.strip():
            self._blocks.append((kind, text))
