"""The web page's files (web/) keep the rules its Content-Security-Policy and its privacy promise
rest on: no inline script, style or event handler in the HTML; no HTML sink, string evaluation
or browser storage in the JavaScript; and the whole page within its weight budget."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
PAGES = sorted(WEB.glob("*.html"))
SCRIPTS = sorted(WEB.glob("*.js"))
# Uncompressed, fonts excluded (the page uses none): BENCHMARKS.md measures what a browser loads.
PAGE_BUDGET_BYTES = 100 * 1024
# What would let text become markup or code, or keep a token past the tab's life.
FORBIDDEN_JS = {
    "innerHTML": r"\binnerHTML\b",
    "outerHTML": r"\bouterHTML\b",
    "insertAdjacentHTML": r"\binsertAdjacentHTML\b",
    "document.write": r"\bdocument\.write(ln)?\b",
    "DOMParser": r"\bDOMParser\b",
    "createContextualFragment": r"\bcreateContextualFragment\b",
    "eval": r"\beval\s*\(",
    "Function constructor": r"\bnew\s+Function\b",
    "string timers": r"\bset(Timeout|Interval)\s*\(\s*[\"'`]",
    "localStorage": r"\blocalStorage\b",
    "sessionStorage": r"\bsessionStorage\b",
    "indexedDB": r"\bindexedDB\b",
    "cookies": r"\bdocument\.cookie\b",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


def parsed(page: Path) -> _Tags:
    tags = _Tags()
    tags.feed(page.read_text(encoding="utf-8"))
    return tags


def without_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$", "", source)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_html_has_no_inline_script_style_or_handler(page: Path) -> None:
    # Given a page of the site
    # When its tags are read
    tags = parsed(page)
    # Then scripts come from files of the site, and no attribute holds script or style
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert scripts
    assert all(attrs.get("src") and "//" not in str(attrs["src"]) for attrs in scripts)
    assert not tags.inline_script
    for tag, attrs in tags.tags:
        assert not [a for a in attrs if a.startswith("on")], f"<{tag}> has an event handler"
        assert "style" not in attrs, f"<{tag}> has a style attribute"
        assert tag != "style", "an inline stylesheet"
        assert not str(attrs.get("href", "")).startswith("javascript:")


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_javascript_has_no_html_sink_eval_or_storage(script: Path) -> None:
    # Given a script of the site, its comments left out
    source = without_comments(script.read_text(encoding="utf-8"))
    # When it is searched for what it must never use
    found = [name for name, pattern in FORBIDDEN_JS.items() if re.search(pattern, source)]
    # Then none of it is there
    assert found == []


def test_the_page_weighs_at_most_100_kb() -> None:
    # Given the files a browser loads for the page (HTML, CSS, scripts, the icon)
    files = [f for f in WEB.iterdir() if f.suffix in {".html", ".css", ".js", ".svg", ".png"}]
    # When their sizes are added up
    total = sum(f.stat().st_size for f in files)
    # Then the page stays within its budget, with no web font among them
    assert total <= PAGE_BUDGET_BYTES, f"web/ is {total} bytes"
    assert not [f for f in WEB.iterdir() if f.suffix in {".woff", ".woff2", ".ttf", ".otf"}]
