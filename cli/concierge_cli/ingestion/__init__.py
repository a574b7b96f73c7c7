"""Ingestion: documents in, a versioned knowledge base out (`concierge ingest`).

    readers         bytes of .md/.markdown/.txt/.html/.htm/.pdf -> Markdown text + declared metadata
    metadata        front matter; title, category and language of a document
    categories      each category's description (category files, front matter, titles)
    chunker         heading-aware chunks with overlap
    dedupe          identical documents and chunks once
    manifest        per-source sha256 -> chunks, for incremental runs
    pipeline        paths -> index + manifest + report (writes nothing)
    report          per-file outcomes, summary, progress line
    local_target    index file + manifest, atomically
    s3_target       documents + Bedrock KB metadata sidecars + index + manifest on S3
    knowledge_base  start a Bedrock KB ingestion job

See docs/ingestion.md.
"""

from __future__ import annotations

from concierge_cli.ingestion.errors import (
    CategoryFileError,
    IngestError,
    PathNotFoundError,
    PublishError,
)
from concierge_cli.ingestion.pipeline import (
    IngestOptions,
    IngestResult,
    build_index,
    ingest,
    kb_version,
    parse_document,
)
from concierge_cli.ingestion.readers import SkipDocument
from concierge_cli.ingestion.report import FileOutcome, IngestReport, Progress, Status

__all__ = [
    "CategoryFileError",
    "FileOutcome",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "IngestResult",
    "PathNotFoundError",
    "Progress",
    "PublishError",
    "SkipDocument",
    "Status",
    "build_index",
    "ingest",
    "kb_version",
    "parse_document",
]
