"""From paths to an index: find the files, read the changed ones, chunk, de-duplicate, version.

Nothing here writes anywhere: `ingest` returns the new index, the new manifest and the report,
and a target (`local_target`, `s3_target`) publishes them only once the whole run succeeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from concierge.adapters.embeddings.port import DenseEmbedder
from concierge.knowledge import CategoryInfo, Chunk, IndexFile
from concierge.safety.screen import screen
from concierge_cli.ingestion.categories import DESCRIPTION_FILES, describe, read_category_files
from concierge_cli.ingestion.chunker import check_sizes, chunk_text
from concierge_cli.ingestion.dedupe import drop_duplicate_chunks, duplicate_documents, text_key
from concierge_cli.ingestion.errors import PathNotFoundError
from concierge_cli.ingestion.manifest import Manifest, SourceEntry
from concierge_cli.ingestion.metadata import resolve
from concierge_cli.ingestion.readers import (
    TOO_LARGE,
    UNREADABLE,
    SkipDocument,
    check_format,
    read_document,
)
from concierge_cli.ingestion.report import FileOutcome, Flagged, IngestReport, Status
from concierge_cli.ingestion.vectors import embed_chunks

# Bump when chunking or metadata rules change, so manifests of older runs re-read everything.
# 3: the manifest keeps each document's front-matter category description.
RULES_VERSION = 3
MEGABYTE = 1024 * 1024
INJECTED = "injected instructions"

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class IngestOptions:
    max_chunk_chars: int = 1_500
    overlap_chars: int = 150
    max_file_bytes: int = 10 * MEGABYTE
    category: str | None = None  # for documents that declare none (before the folder name)
    default_category: str = "general"
    # Leave out documents the screen finds instructions for an assistant in (else: reported).
    strict: bool = False

    def __post_init__(self) -> None:
        check_sizes(self.max_chunk_chars, self.overlap_chars)
        if self.max_file_bytes <= 0:
            raise ValueError("the file size limit must be positive")

    def fingerprint(self) -> str:
        """The options that shape chunks: a manifest made with others is not reused."""
        return (
            f"rules={RULES_VERSION};chars={self.max_chunk_chars};overlap={self.overlap_chars};"
            f"category={self.category or ''};default={self.default_category}"
        )


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: str  # its path below the ingested folder (or its name), `/`-separated
    folder: str | None  # the folder it is in, below the ingested folder


@dataclass
class IngestResult:
    index: IndexFile
    manifest: Manifest
    report: IngestReport
    previous: Manifest | None
    files: dict[str, Path] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # documents read in this run

    def to_publish(self) -> list[str]:
        """Documents a document store must (re)write: read in this run, or newly published."""
        before = self.previous.published() if self.previous else set()
        return sorted(
            source
            for source in self.manifest.published()
            if source in self.texts or source not in before
        )

    def to_withdraw(self) -> list[str]:
        """Documents a document store must delete: published before, not any more."""
        before = self.previous.published() if self.previous else set()
        return sorted(before - self.manifest.published())

    def text_of(self, source: str) -> str:
        """The normalised text of a document (read again if this run reused its chunks)."""
        if source not in self.texts:
            path = self.files[source]
            self.texts[source] = read_document(path.read_bytes(), path.suffix).text
        return self.texts[source]


def ingest(
    paths: Sequence[Path],
    options: IngestOptions | None = None,
    previous: Manifest | None = None,
    progress: Progress | None = None,
    reuse: bool = True,
    *,
    embedder: DenseEmbedder | None = None,
    previous_index: IndexFile | None = None,
) -> IngestResult:
    """Ingest `paths`. With a `previous` manifest, files it records with the same bytes and
    settings keep their chunks unread (unless `reuse` is off), and sources it has that are
    gone are reported removed. With an `embedder`, the index carries the chunks' vectors:
    those of `previous_index` are reused for chunks whose text it already embedded."""
    options = options or IngestOptions()
    files, outcomes = discover(paths)
    category_files = read_category_files(paths)
    fingerprint = options.fingerprint()
    known = previous.sources if previous else {}
    reusable = known if reuse and previous and previous.settings == fingerprint else {}
    entries, texts, skipped = _read_files(files, options, reusable, progress)
    outcomes.extend(
        replace(skip, detail=f"{skip.detail}; dropped from the knowledge base")
        if skip.source in known
        else skip
        for skip in skipped
    )

    flagged = _screened(entries)
    if options.strict:
        for found in flagged:
            del entries[found.source]
            texts.pop(found.source, None)
            outcomes.append(
                FileOutcome(found.source, Status.SKIPPED, reason=INJECTED, detail=found.detail())
            )

    copies = duplicate_documents((source, entries[source].text_key) for source in entries)
    for source, original in copies.items():
        entries[source] = entries[source].model_copy(update={"duplicate_of": original})
    kept, repeats = drop_duplicate_chunks(
        chunk for source, entry in entries.items() if source not in copies for chunk in entry.chunks
    )
    categories = describe(
        kept,
        {source: entry.category_description for source, entry in entries.items()},
        category_files,
    )
    index = IndexFile(kb_version=kb_version(kept, categories), categories=categories, chunks=kept)
    vectors = None
    if embedder is not None and kept:
        packed, vectors = embed_chunks(kept, embedder, previous_index)
        index.embeddings = packed

    for source, entry in entries.items():
        outcomes.append(_outcome(source, entry, source in texts, known.get(source), reusable))
    reported = {outcome.source for outcome in outcomes}
    outcomes.extend(
        FileOutcome(source, Status.REMOVED, detail="no longer found; dropped")
        for source in known
        if source not in reported
    )
    manifest = Manifest(
        settings=fingerprint,
        kb_version=index.kb_version,
        sources=entries,
        knowledge_base_synced=previous.knowledge_base_synced if previous else "",
    )
    report = IngestReport(
        files=sorted(outcomes, key=lambda outcome: outcome.source),
        kb_version=index.kb_version,
        previous_kb_version=previous.kb_version if previous else None,
        chunks=len(kept),
        languages=sorted({chunk.language for chunk in kept}),
        duplicate_chunks=[(dropped.chunk_id, first.chunk_id) for dropped, first in repeats],
        flagged=flagged,
        strict=options.strict,
        vectors=vectors,
    )
    return IngestResult(
        index=index,
        manifest=manifest,
        report=report,
        previous=previous,
        files={file.source: file.path for file in files},
        texts=texts,
    )


def _screened(entries: dict[str, SourceEntry]) -> list[Flagged]:
    """The documents with chunks the screen flags (concierge.safety.screen): text written to
    steer an assistant that reads it. Every chunk is screened, read in this run or reused."""
    flagged = []
    for source, entry in sorted(entries.items()):
        verdicts = [(chunk.chunk_id, screen(chunk.text, "document")) for chunk in entry.chunks]
        hits = [(chunk_id, verdict) for chunk_id, verdict in verdicts if verdict.flagged]
        if hits:
            reasons = dict.fromkeys(reason for _, verdict in hits for reason in verdict.reasons)
            flagged.append(Flagged(source, [chunk_id for chunk_id, _ in hits], list(reasons)))
    return flagged


def _read_files(
    files: list[SourceFile],
    options: IngestOptions,
    reusable: dict[str, SourceEntry],
    progress: Progress | None,
) -> tuple[dict[str, SourceEntry], dict[str, str], list[FileOutcome]]:
    """Manifest entries of the usable files, the texts of those read, and the skipped files."""
    entries: dict[str, SourceEntry] = {}
    texts: dict[str, str] = {}
    skipped: list[FileOutcome] = []
    for number, file in enumerate(files, start=1):
        if progress:
            progress(number, len(files), file.source)
        try:
            entry, text = _ingest_file(file, options, reusable.get(file.source))
        except SkipDocument as skip:
            skipped.append(
                FileOutcome(file.source, Status.SKIPPED, reason=skip.reason, detail=skip.detail)
            )
            continue
        entries[file.source] = entry
        if text is not None:
            texts[file.source] = text
    return entries, texts, skipped


def build_index(
    paths: Iterable[Path],
    default_category: str = "general",
    embedder: DenseEmbedder | None = None,
) -> IndexFile:
    """The index of `paths` with default options and no manifest (tests, benchmarks); with
    `embedder`, with the chunks' vectors."""
    options = IngestOptions(default_category=default_category)
    return ingest(list(paths), options, embedder=embedder).index


def parse_document(path: Path, default_category: str = "general") -> list[Chunk]:
    """The chunks of one file, its name as the source. Raises `SkipDocument` if unusable."""
    options = IngestOptions(default_category=default_category)
    return _parse(SourceFile(path, path.name, None), path.read_bytes(), options)[1]


def kb_version(chunks: Iterable[Chunk], categories: dict[str, CategoryInfo] | None = None) -> str:
    """The content hash of the knowledge base: the same chunks always give the same version
    (so cached answers stay valid), any change gives a new one (cache keys include it). The
    categories' descriptions count too: questions are routed by them."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk.model_dump_json().encode())
        digest.update(b"\n")
    for name, category in (categories or {}).items():
        digest.update(f"{name}\t{category.description}\n".encode())
    return digest.hexdigest()[:12]


def discover(paths: Sequence[Path]) -> tuple[list[SourceFile], list[FileOutcome]]:
    """Files to ingest, sorted by source name, and the ones refused for a name clash.

    In a folder, hidden files and folders, README files and category files (which describe
    the folder) are left out; a file given by name is always taken."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise PathNotFoundError(f"no such file or folder: {', '.join(missing)}")
    found: dict[str, SourceFile] = {}
    seen_paths: set[Path] = set()
    clashes: list[FileOutcome] = []
    for root in paths:
        if root.is_file():
            candidates = [SourceFile(root, root.name, None)]
        else:
            candidates = [
                SourceFile(
                    file,
                    file.relative_to(root).as_posix(),
                    file.parent.name if file.parent != root else None,
                )
                for file in sorted(root.rglob("*"))
                if file.is_file() and not _left_out(file.relative_to(root))
            ]
        for candidate in candidates:
            resolved = candidate.path.resolve()
            if resolved in seen_paths:
                continue
            seen_paths.add(resolved)
            other = found.get(candidate.source)
            if other is not None:
                clashes.append(
                    FileOutcome(
                        candidate.source,
                        Status.SKIPPED,
                        reason="name clash",
                        detail=f"{candidate.path} has the same source name as {other.path}",
                    )
                )
                continue
            found[candidate.source] = candidate
    return [found[source] for source in sorted(found)], clashes


def _left_out(relative: Path) -> bool:
    hidden = any(part.startswith(".") for part in relative.parts)
    # Category files describe the documents' categories (`categories`); they are not documents.
    return hidden or relative.stem.lower() == "readme" or relative.name in DESCRIPTION_FILES


def _ingest_file(
    file: SourceFile, options: IngestOptions, reusable: SourceEntry | None
) -> tuple[SourceEntry, str | None]:
    """The file's manifest entry, and its text if it was read (None: reused as it was)."""
    check_format(file.path.suffix)
    try:
        size = file.path.stat().st_size
        if size > options.max_file_bytes:
            raise SkipDocument(
                TOO_LARGE,
                f"{size / MEGABYTE:.1f} MB, over the {options.max_file_bytes / MEGABYTE:g} MB limit (--max-file-mb)",
            )
        raw = file.path.read_bytes()
    except OSError as error:
        raise SkipDocument(UNREADABLE, error.strerror or type(error).__name__) from None
    digest = hashlib.sha256(raw).hexdigest()
    if reusable is not None and reusable.sha256 == digest:
        return reusable.model_copy(update={"duplicate_of": None}), None
    text, chunks, description = _parse(file, raw, options)
    entry = SourceEntry(
        sha256=digest, text_key=text_key(text), chunks=chunks, category_description=description
    )
    return entry, text


def _parse(file: SourceFile, raw: bytes, options: IngestOptions) -> tuple[str, list[Chunk], str]:
    """The document's text, its chunks and its front matter's category description."""
    try:
        document = read_document(raw, file.path.suffix)
        meta = resolve(
            document.declared,
            document.text,
            file_stem=file.path.stem,
            folder=file.folder,
            category=options.category,
            default_category=options.default_category,
        )
        sections = chunk_text(document.text, options.max_chunk_chars, options.overlap_chars)
    except SkipDocument:
        raise
    except Exception as error:  # a reader's bug or a malformed file: this file only
        raise SkipDocument(
            UNREADABLE, f"could not be parsed ({type(error).__name__}: {error})"
        ) from error
    chunks = [
        Chunk(
            source=file.source,
            title=meta.title,
            text=section.text,
            category=meta.category,
            language=meta.language,
            chunk_id=f"{file.source}#{number}",
            heading=section.heading,
        )
        for number, section in enumerate(sections, start=1)
    ]
    return document.text, chunks, meta.category_description


def _outcome(
    source: str,
    entry: SourceEntry,
    was_read: bool,
    before: SourceEntry | None,
    reusable: dict[str, SourceEntry],
) -> FileOutcome:
    if entry.duplicate_of is not None:
        return FileOutcome(
            source,
            Status.DUPLICATE,
            detail=f"same text as {entry.duplicate_of}",
        )
    if not was_read:
        return FileOutcome(source, Status.UNCHANGED, chunks=len(entry.chunks))
    if before is None:
        return FileOutcome(source, Status.NEW, chunks=len(entry.chunks))
    same_bytes = before.sha256 == entry.sha256
    detail = "re-chunked: the ingest settings changed" if same_bytes and not reusable else ""
    return FileOutcome(source, Status.CHANGED, chunks=len(entry.chunks), detail=detail)
