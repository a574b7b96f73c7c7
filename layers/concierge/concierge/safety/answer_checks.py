"""Checks an answer passes before anyone else sees it: no links or images to hosts outside an
allow-list (a rendered image fetches its URL, and the URL can carry the conversation away),
within a length bound, in the language it was asked for.

Each check either repairs the text (removes the link, cuts at a sentence) or reports a problem;
an answer with any problem is never cached (concierge.steps.answer).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from concierge.text import STOPWORDS, words

# ![alt](url "title"), [text](url "title"), <https://…>, [id]: url, <img …>, <a href=…>…</a>,
# and bare URLs a Markdown renderer turns into links.
# A destination may hold one level of parentheses, as Markdown allows: javascript:alert(1).
_DESTINATION = r"<?((?:[^()\s>]|\([^()\s]*\))*)>?"
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*" + _DESTINATION + r"(?:\s+\"[^\"\n]*\")?\s*\)")
_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(\s*" + _DESTINATION + r"(?:\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>", re.IGNORECASE)
_REFERENCE = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$", re.MULTILINE)
_HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_LINK = re.compile(r"<a\b[^>]*\bhref\s*=\s*[\"']?([^\"'\s>]+)[^>]*>(.*?)</a\s*>", re.I | re.S)
_BARE_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)[^\s<>()\[\]\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?"
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?])")
_SPACES = re.compile(r"[ \t]{2,}")
_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|$)")  # noqa: RUF001 - full-width on purpose
# A language is judged from its function words only when there are enough of them.
_MIN_EVIDENCE = 3
# A quotation: “…”, „…“, «…», »…«, "…" (not across paragraphs).
_QUOTATION = re.compile(r'“[^”\n]*”|„[^“”\n]*[“”]|«[^»\n]*»|»[^«\n]*«|"[^"\n]*"')


@dataclass(frozen=True)
class Repaired:
    text: str
    # What had to change ("links", "length"); empty when the text passed as it was.
    problems: tuple[str, ...] = ()


def allowed_host(url: str, hosts: Sequence[str]) -> bool:
    """Whether `url` points at one of `hosts` or a subdomain of one. Relative links and
    anchors point nowhere else and are allowed; other schemes (javascript:, data:) are not."""
    if url.startswith(("#", "/")) and not url.startswith("//"):
        return True
    if url.lower().startswith("www."):
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https", "") or not parts.hostname:
        return False
    host = parts.hostname.lower().rstrip(".")
    return any(host == allowed or host.endswith("." + allowed) for allowed in hosts)


def without_foreign_links(text: str, hosts: Sequence[str]) -> Repaired:
    """`text` without images and links to hosts outside `hosts`: an image goes whole (its alt
    text can carry data too), a link keeps its words, a bare URL goes."""
    allowed = tuple(host.lower().strip().rstrip(".") for host in hosts if host.strip())
    removed = 0

    def keep_if_allowed(url: str, kept: str, replacement: str) -> str:
        nonlocal removed
        if allowed_host(url, allowed):
            return kept
        removed += 1
        return replacement

    text = _IMAGE.sub(lambda m: keep_if_allowed(m.group(2), m.group(0), ""), text)
    text = _LINK.sub(lambda m: keep_if_allowed(m.group(2), m.group(0), m.group(1)), text)
    text = _AUTOLINK.sub(lambda m: keep_if_allowed(m.group(1), m.group(0), ""), text)
    text = _REFERENCE.sub(lambda m: keep_if_allowed(m.group(1), m.group(0), ""), text)
    text = _HTML_IMAGE.sub(lambda m: keep_if_allowed(_src(m.group(0)), m.group(0), ""), text)
    text = _HTML_LINK.sub(lambda m: keep_if_allowed(m.group(1), m.group(0), m.group(2)), text)

    def bare(match: re.Match[str]) -> str:
        url = match.group(0).rstrip(_TRAILING)
        tail = match.group(0)[len(url) :]
        return keep_if_allowed(url, match.group(0), tail)

    text = _BARE_URL.sub(bare, text)
    if not removed:
        return Repaired(text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", text))
    return Repaired(text.strip(), ("links",))


def _src(tag: str) -> str:
    match = re.search(r"\bsrc\s*=\s*[\"']?([^\"'\s>]+)", tag, re.IGNORECASE)
    return match.group(1) if match else ""


def within_length(text: str, max_chars: int) -> Repaired:
    """`text` cut at the last sentence that ends within `max_chars` (or at a word, when no
    sentence does), with an ellipsis."""
    if len(text) <= max_chars:
        return Repaired(text)
    head = text[: max_chars - 1]
    ends = [match.end() for match in _SENTENCE_END.finditer(head)]
    cut = head[: ends[-1]].rstrip() if ends else head.rsplit(" ", 1)[0].rstrip() + "…"
    return Repaired(cut, ("length",))


def written_in_another_language(text: str, language: str) -> str | None:
    """The language `text` is clearly written in when it is not `language`; None when it is
    `language`, or when its function words are too few to tell (a short answer, a list of
    product names) or `language` is one the stopword lists do not know.

    Quotations are the documents' words, in the documents' language: an answer whose own words
    (outside quotation marks) are clearly in `language` may quote a document in another."""
    if language not in STOPWORDS:
        return None
    foreign = _clearly_other(text, language)
    if foreign is None:
        return None
    own_words = _QUOTATION.sub(" ", text)
    if own_words != text and _leading(own_words) == language:
        return None
    return foreign


def _clearly_other(text: str, language: str) -> str | None:
    counts = _function_words(text)
    best, evidence = counts.most_common(1)[0]
    if best == language or evidence < _MIN_EVIDENCE or evidence < 2 * counts[language]:
        return None
    return best


def _leading(text: str) -> str | None:
    """The language with the most function words in `text`, if one has more than any other."""
    (first, most), (_, second) = _function_words(text).most_common(2)
    return first if most > second else None


def _function_words(text: str) -> Counter[str]:
    tokens = words(text)
    return Counter({lang: sum(t in stops for t in tokens) for lang, stops in STOPWORDS.items()})
