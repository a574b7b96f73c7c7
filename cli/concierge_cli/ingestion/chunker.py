"""Split a document into chunks that follow its headings.

1. Sections start at `#` and `##` headings (outside code fences), so a citation points at the
   part of the document that answered. A heading directly followed by another heading stays
   with it: `# Title` + `## First part` is one section, never a chunk of a bare title.
2. A section longer than `max_chars` is cut at the coarsest boundary that makes the pieces fit:
   a `###` heading, a blank line, a line end, a sentence end, a space (a hard cut only for a
   run of text without any of these). Every piece after the first starts with the section's
   heading line and then repeats up to `overlap` characters from the end of the piece before it
   (from a sentence start if there is one, else a word start), so a sentence cut in two is
   whole in one of them and each piece says what it is about. Overlap never crosses a `#`/`##` heading.

The output is a pure function of the text and the two numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from concierge_cli.ingestion.metadata import heading

MIN_CHUNK_CHARS = 200
_WHITESPACE = re.compile(r"\s")
_SENTENCE_START = re.compile(r"(?<=[.!?])\s+")

# From the coarsest boundary to the finest.
_BOUNDARIES = (
    re.compile(r"\n+(?=#{3,6}\s)"),
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?;:])\s+"),
    re.compile(r"\s+"),
)


@dataclass(frozen=True)
class Section:
    heading: str  # the nearest `#`/`##` heading's text, "" before the first heading
    text: str


def check_sizes(max_chars: int, overlap: int) -> None:
    if max_chars < MIN_CHUNK_CHARS:
        raise ValueError(f"chunks need at least {MIN_CHUNK_CHARS} characters (got {max_chars})")
    if not 0 <= overlap <= max_chars // 4:
        raise ValueError(
            f"overlap must be between 0 and a quarter of the chunk size ({max_chars // 4}), got {overlap}"
        )


def chunk_text(text: str, max_chars: int = 1_500, overlap: int = 150) -> list[Section]:
    check_sizes(max_chars, overlap)
    chunks: list[Section] = []
    for title, head, body, whole in _sections(text):
        texts = [whole] if len(whole) <= max_chars else _split(head, body, max_chars, overlap)
        chunks.extend(Section(title, piece) for piece in texts)
    return chunks


def _split(head: str, body: str, max_chars: int, overlap: int) -> list[str]:
    """A long section as pieces: the first under the section's heading lines, the others
    under its nearest heading line."""
    if len(head) > max_chars // 4:  # a heading block this long is text, not context
        head, body = "", f"{head}\n{body}"
    prefix = head.splitlines()[-1] if head else ""
    budget = max_chars - len(head) - 1
    return [
        f"{lead}\n{piece}" if (lead := head if number == 0 else prefix) else piece
        for number, piece in enumerate(_pieces(body, budget, overlap))
    ]


def _sections(text: str) -> list[tuple[str, str, str, str]]:
    """(nearest heading text, leading heading lines, body, whole text) per section."""
    sections: list[tuple[str, list[str], list[str]]] = []
    title = ""
    head: list[str] = []
    body: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        found = None if fenced else heading(line)
        if found and found[0] <= 2:
            if any(part.strip() for part in body):
                sections.append((title, head, body))
                head, body = [], []
            title = found[1]
            head.extend([*body, line])
            body = []
            continue
        if head or body or line.strip():
            body.append(line)
    sections.append((title, head, body))
    kept = [
        (name, "\n".join(lines).strip(), "\n".join(rest).strip(), "\n".join(lines + rest).strip())
        for name, lines, rest in sections
        if lines or any(part.strip() for part in rest)
    ]
    # A heading with nothing under it says nothing on its own: keep it only if it is all there is.
    with_text = [section for section in kept if section[2]]
    return with_text or kept


def _pieces(body: str, budget: int, overlap: int) -> list[str]:
    """Pack the body's smallest-needed units into pieces of at most `budget` characters, each
    after the first opening with the tail of the one before."""
    atoms = _atoms(body, budget - overlap - 2, 0)
    pieces: list[str] = []
    current = ""
    for separator, atom in atoms:
        candidate = f"{current}{separator}{atom}" if current else atom
        if len(candidate) <= budget:
            current = candidate
            continue
        pieces.append(current)
        tail = _tail(current, overlap)
        current = f"{tail}{separator or ' '}{atom}" if tail else atom
    if current:
        pieces.append(current)
    return pieces


def _atoms(text: str, limit: int, depth: int) -> list[tuple[str, str]]:
    """(separator before it, unit) pairs, each unit at most `limit` characters, cut at the
    coarsest boundary that is enough. Separators are normalised to "\\n\\n", "\\n", " " or ""."""
    if len(text) <= limit:
        return [("", text)]
    if depth == len(_BOUNDARIES):
        return [("", text[start : start + limit]) for start in range(0, len(text), limit)]
    units: list[tuple[str, str]] = []
    position, separator = 0, ""
    for match in [*_BOUNDARIES[depth].finditer(text), None]:
        end = match.start() if match else len(text)
        part = text[position:end]
        if part:
            (_, first), *rest = _atoms(part, limit, depth + 1)
            units.extend([(separator, first), *rest])
        if match:
            separator, position = _normalised(match.group()), match.end()
    return units


def _normalised(separator: str) -> str:
    breaks = separator.count("\n")
    return "\n\n" if breaks >= 2 else "\n" if breaks else " "


def _tail(piece: str, overlap: int) -> str:
    """At most the last `overlap` characters of `piece`, from a sentence or word start."""
    if overlap <= 0:
        return ""
    if len(piece) <= overlap:
        return piece.strip()
    tail = piece[-overlap:]
    if piece[-overlap - 1].isspace():
        return tail.strip()
    # Start at the first sentence in the tail, else at its first whole word.
    for boundary in (_SENTENCE_START, _WHITESPACE):
        parts = boundary.split(tail, maxsplit=1)
        if len(parts) == 2 and parts[1].strip():
            return parts[1].strip()
    return tail.strip()
