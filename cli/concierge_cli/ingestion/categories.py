"""What each category of a knowledge base is about, so that questions can be routed to it.

A category's description comes from the first of these that gives one:

1. `_category_.json` in the folder its documents are in, Docusaurus' category file:
   `{"label": "CLI", "description": "Commands and their flags"}` (Docusaurus' generated-index
   form, with the description under `"link"`, is read too). It describes the category named
   after that folder. A label that says more than the folder's name leads the description.
2. `_categories_.json` at the top of an ingested folder, for a knowledge base whose folders are
   not its categories (a flat folder whose documents declare `category:` in front matter):
   `{"<category>": "<description>", …}`; a value may also be `{"label", "description"}`.
3. `category_description:` in the front matter of the category's documents: the most common
   one (the first in source order on a tie).
4. The titles of its documents: `Documents: <title>; <title>; …`, the first 12 distinct titles
   in source order, at most 400 characters.

Neither file is a document: discovery leaves them out, and they are read on every run (they are
small), so editing one takes effect without re-reading the documents.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from concierge.knowledge import CategoryInfo, Chunk, DescriptionSource
from concierge_cli.ingestion.errors import CategoryFileError
from concierge_cli.ingestion.metadata import folder_category

CATEGORY_FILE = "_category_.json"
CATEGORIES_FILE = "_categories_.json"
DESCRIPTION_FILES = frozenset({CATEGORY_FILE, CATEGORIES_FILE})
_TITLES = 12
_TITLES_CHARS = 400


@dataclass(frozen=True)
class Described:
    description: str
    source: DescriptionSource


def read_category_files(roots: Sequence[Path]) -> dict[str, Described]:
    """The descriptions the category files under `roots` give, by category. A folder's own
    `_category_.json` wins over the knowledge base's `_categories_.json`. Raises
    `CategoryFileError` for a file that is not what it should be."""
    found: dict[str, Described] = {}
    for root in (root for root in roots if root.is_dir()):
        top = root / CATEGORIES_FILE
        if top.is_file():
            for name, entry in _object(top).items():
                category = name.strip().lower()
                text = _description(entry, category, top)
                if category and text:
                    found.setdefault(category, Described(text, "categories-file"))
    for root in (root for root in roots if root.is_dir()):
        for path in sorted(root.rglob(CATEGORY_FILE)):
            relative = path.relative_to(root)
            hidden = any(part.startswith(".") for part in relative.parts)
            named = folder_category(path.parent.name) if path.parent != root else None
            if hidden or named is None:
                continue  # a root's own file describes no category: its documents have none
            text = _description(_object(path), named, path)
            if text:
                found[named] = Described(text, "category-file")
    return found


def _object(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CategoryFileError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(document, dict):
        raise CategoryFileError(f"{path}: must hold one JSON object")
    return document


def _description(entry: object, category: str, path: Path) -> str:
    """The description an entry gives (a string, or an object with label and description)."""
    if isinstance(entry, str):
        return " ".join(entry.split())
    if not isinstance(entry, dict):
        raise CategoryFileError(f"{path}: {category!r} must be a string or an object")
    link = entry.get("link")
    text = entry.get("description") or (link.get("description") if isinstance(link, dict) else "")
    label = entry.get("label") or ""
    if not isinstance(text, str) or not isinstance(label, str):
        raise CategoryFileError(f"{path}: label and description must be strings")
    text, label = " ".join(text.split()), " ".join(label.split())
    if not text:
        return ""
    says_more = label and folder_category(label) != category
    return f"{label}: {text}" if says_more else text


def describe(
    chunks: Iterable[Chunk],
    declared: dict[str, str],
    files: dict[str, Described],
) -> dict[str, CategoryInfo]:
    """Every category of `chunks` with its description and document count: those the files
    describe first, in the files' order (the menu a question is routed by keeps it), then the
    others by name. `declared`: each source's front-matter `category_description`."""
    sources: dict[str, dict[str, str]] = {}  # category -> source -> title, in source order
    for chunk in sorted(chunks, key=lambda chunk: chunk.source):
        sources.setdefault(chunk.category, {}).setdefault(chunk.source, chunk.title)
    described: dict[str, CategoryInfo] = {}
    ordered = [category for category in files if category in sources]
    for category in [*ordered, *sorted(set(sources) - set(ordered))]:
        titles = sources[category]
        given = files.get(category)
        if given is None:
            given = _from_front_matter(declared.get(source, "") for source in titles)
        if given is None:
            given = Described(_from_titles(titles.values()), "titles")
        described[category] = CategoryInfo(
            description=given.description, source=given.source, documents=len(titles)
        )
    return described


def _from_front_matter(texts: Iterable[str]) -> Described | None:
    counts = Counter(" ".join(text.split()) for text in texts if text.strip())
    if not counts:
        return None
    # most_common keeps first-seen order among equal counts: the first source wins a tie.
    return Described(counts.most_common(1)[0][0], "front-matter")


def _from_titles(titles: Iterable[str]) -> str:
    chosen: list[str] = []
    length = len("Documents: ")
    for title in dict.fromkeys(" ".join(title.split()) for title in titles):
        if len(chosen) == _TITLES or (chosen and length + len(title) + 2 > _TITLES_CHARS):
            break
        chosen.append(title)
        length += len(title) + 2
    return "Documents: " + "; ".join(chosen)
