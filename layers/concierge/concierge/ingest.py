"""Turn a folder of Markdown documents into index chunks (the seam `concierge ingest` grows from).

Front matter (`key: value` lines between `---` fences) gives title, category and language;
a missing language is detected. Chunks follow `##` sections so a citation points at the part
of the document that answered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from concierge.knowledge import Chunk, IndexFile
from concierge.text import detect_language

_SUPPORTED = {".md", ".markdown", ".txt"}
_MAX_CHUNK_CHARS = 1_500


def parse_document(path: Path, default_category: str) -> list[Chunk]:
    raw = path.read_text(encoding="utf-8")
    meta, body = _front_matter(raw)
    title = meta.get("title") or _first_heading(body) or path.stem
    language = meta.get("language") or detect_language(body)
    category = meta.get("category") or default_category
    return [
        Chunk(source=path.name, title=title, text=section, category=category, language=language)
        for section in _sections(body)
    ]


def build_index(paths: Iterable[Path], default_category: str = "general") -> IndexFile:
    files = sorted(
        {
            file
            for path in paths
            for file in ([path] if path.is_file() else path.rglob("*"))
            if file.suffix.lower() in _SUPPORTED and file.name.lower() != "readme.md"
        }
    )
    chunks = [chunk for file in files for chunk in parse_document(file, default_category)]
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk.model_dump_json().encode())
    # The content hash is the knowledge-base version: a changed document changes cache keys.
    return IndexFile(kb_version=digest.hexdigest()[:12], chunks=chunks)


def _front_matter(raw: str) -> tuple[dict[str, str], str]:
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, raw
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            meta = {}
            for entry in lines[1:end]:
                key, sep, value = entry.partition(":")
                if sep:
                    meta[key.strip().lower()] = value.strip()
            return meta, "\n".join(lines[end + 1 :])
    return {}, raw


def _first_heading(body: str) -> str | None:
    for line in body.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None


def _sections(body: str) -> list[str]:
    """Split at `##` headings; the document's `#` title stays with the first section."""
    sections: list[list[str]] = [[]]
    for line in body.splitlines():
        if line.startswith("## ") and any(part.strip() for part in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    chunks = []
    for lines in sections:
        text = "\n".join(lines).strip()
        while len(text) > _MAX_CHUNK_CHARS:
            cut = text.rfind("\n", 0, _MAX_CHUNK_CHARS)
            cut = cut if cut > _MAX_CHUNK_CHARS // 2 else _MAX_CHUNK_CHARS
            chunks.append(text[:cut].strip())
            text = text[cut:].strip()
        if text:
            chunks.append(text)
    return chunks
