"""A document's title, category and language: declared by the file, else given, else inferred.

- title: front matter / HTML `<title>` / PDF title, else the first heading, else the file name;
- category: front matter / `<meta name="category">`, else `--category`, else the name of the
  folder the file is in (below the ingested path), else the default category;
- language: front matter / `<html lang>`, else detected from the text;
- category description: front matter `category_description` (see `categories`), else "".

Category and language are lower-cased; a language is its primary subtag (`de-AT` -> `de`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from concierge.text import detect_language

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class DocumentMeta:
    title: str
    category: str
    language: str
    category_description: str = ""


def split_front_matter(raw: str) -> tuple[dict[str, str], str]:
    """`key: value` lines between two `---` lines at the very top; keys lower-cased.
    Without a closing `---` there is no front matter and the text is returned whole."""
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, raw
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            meta: dict[str, str] = {}
            for entry in lines[1:end]:
                key, sep, value = entry.partition(":")
                if sep and key.strip():
                    meta[key.strip().lower()] = _unquote(value.strip())
            return meta, "\n".join(lines[end + 1 :])
    return {}, raw


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def heading(line: str) -> tuple[int, str] | None:
    """(level, text) of an ATX heading line (`## Refunds` -> (2, "Refunds")), else None."""
    match = _HEADING.match(line)
    return (len(match.group(1)), match.group(2)) if match else None


def first_heading(text: str) -> str | None:
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (found := heading(line)):
            return found[1]
    return None


def folder_category(folder: str) -> str | None:
    """A folder name as a category: `Shipping Info` -> `shipping-info`."""
    slug = "-".join(folder.lower().split())
    return slug or None


def resolve(
    declared: dict[str, str],
    text: str,
    *,
    file_stem: str,
    folder: str | None,
    category: str | None,
    default_category: str,
) -> DocumentMeta:
    title = declared.get("title") or first_heading(text) or file_stem
    chosen = (
        declared.get("category")
        or category
        or (folder_category(folder) if folder else None)
        or default_category
    )
    language = _primary_subtag(declared.get("language", "")) or detect_language(text)
    return DocumentMeta(
        title=title,
        category=chosen.strip().lower(),
        language=language,
        category_description=declared.get("category_description", "").strip(),
    )


def _primary_subtag(tag: str) -> str | None:
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    return primary if _LANGUAGE.match(primary) else None
