"""What an ingest did, file by file, and the one-line summary; the progress line on a terminal."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from concierge_cli.ingestion.vectors import VectorCounts


class Status(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    REMOVED = "removed"


INGESTED = frozenset({Status.NEW, Status.CHANGED, Status.UNCHANGED})


@dataclass(frozen=True)
class FileOutcome:
    source: str
    status: Status
    chunks: int = 0
    reason: str = ""  # skipped: unreadable, unknown format, empty, too large, ...
    detail: str = ""

    def line(self) -> str:
        if self.status in INGESTED:
            what = f"{self.chunks} chunk{'s' if self.chunks != 1 else ''}"
            what += f" ({self.detail})" if self.detail else ""
        else:
            what = ": ".join(part for part in (self.reason, self.detail) if part)
        return f"  {self.status.value:<9}  {self.source}  {what}".rstrip()


@dataclass(frozen=True)
class Flagged:
    """A document with text written to steer an assistant (concierge.safety.screen)."""

    source: str
    chunk_ids: list[str]
    reasons: list[str]

    def detail(self) -> str:
        chunks = ", ".join(chunk_id.rsplit("#", 1)[-1] for chunk_id in self.chunk_ids)
        return f"chunk{'s' if len(self.chunk_ids) > 1 else ''} {chunks}: {', '.join(self.reasons)}"


@dataclass
class IngestReport:
    files: list[FileOutcome]
    kb_version: str
    previous_kb_version: str | None
    chunks: int
    languages: list[str]
    # (dropped chunk id, id of the chunk it repeats)
    duplicate_chunks: list[tuple[str, str]] = field(default_factory=list)
    # Documents carrying injected instructions: skipped with `strict`, else kept and listed.
    flagged: list[Flagged] = field(default_factory=list)
    strict: bool = False
    # The chunks' dense vectors: how many were computed and how many kept from the previous
    # index; None when the index has none.
    vectors: VectorCounts | None = None

    def count(self, *statuses: Status) -> int:
        return sum(outcome.status in statuses for outcome in self.files)

    @property
    def documents(self) -> int:
        """Documents in the knowledge base after this ingest."""
        return self.count(*INGESTED)

    @property
    def changed(self) -> bool:
        return self.kb_version != self.previous_kb_version

    def lines(self) -> list[str]:
        """One line per file that is not simply unchanged; duplicate chunks in one line."""
        lines = [outcome.line() for outcome in self.files if outcome.status is not Status.UNCHANGED]
        if self.duplicate_chunks:
            examples = ", ".join(
                f"{dropped} = {kept}" for dropped, kept in self.duplicate_chunks[:3]
            )
            more = len(self.duplicate_chunks) - 3
            lines.append(
                f"  {len(self.duplicate_chunks)} duplicate chunk(s) dropped: {examples}"
                + (f" and {more} more" if more > 0 else "")
            )
        if self.flagged and not self.strict:
            lines.append(
                f"  {len(self.flagged)} document(s) carry injected instructions (kept; the chain "
                "leaves such passages out of answers; --strict skips the documents):"
            )
            lines.extend(f"    {found.source}  {found.detail()}" for found in self.flagged)
        return lines

    def summary(self) -> str:
        counts = ", ".join(
            f"{number} {status.value}"
            for status in Status
            if (number := self.count(status)) or status in INGESTED
        )
        languages = ", ".join(self.languages) or "no languages"
        version = f"knowledge-base version {self.kb_version}" + (
            "" if self.changed else " (unchanged)"
        )
        return (
            f"ingested {self.documents} documents ({counts}) as {self.chunks} chunks "
            f"({languages}); {version}"
        )

    def vectors_line(self) -> str:
        """What the dense part of the index got."""
        if self.vectors is None:
            return "no dense vectors: search is lexical only"
        return (
            f"dense vectors ({self.vectors.model}): {self.vectors.embedded} embedded, "
            f"{self.vectors.reused} reused"
        )


class Progress:
    """`[12/28] en-tents.md` rewritten in place on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO, enabled: bool | None = None) -> None:
        self._stream = stream
        self._enabled = stream.isatty() if enabled is None else enabled
        self._width = 0

    def __call__(self, done: int, total: int, source: str) -> None:
        if not self._enabled:
            return
        text = f"[{done}/{total}] {source}"[:100]
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
