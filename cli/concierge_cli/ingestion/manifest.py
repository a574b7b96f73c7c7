"""The incremental-ingest manifest: what each source file was, and the chunks it gave.

Kept next to the index (`index.manifest.json` locally, `<prefix>/manifest.json` on S3). A file
whose bytes hash to the recorded sha256, ingested with the same settings, reuses its recorded
chunks without being read as a document again. The manifest is a cache: losing it, or a
manifest of another format, costs one full re-ingest and nothing else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ValidationError

from concierge.knowledge import Chunk

MANIFEST_FORMAT = 1


class SourceEntry(BaseModel):
    sha256: str  # of the file's bytes
    text_key: str  # of its normalised text (document de-duplication)
    chunks: list[Chunk]  # before chunk de-duplication, which depends on the other documents
    duplicate_of: str | None = None  # a copy is neither indexed nor uploaded
    category_description: str = ""  # its front matter's, for the category it is in


class Manifest(BaseModel):
    format_version: int = MANIFEST_FORMAT
    settings: str  # fingerprint of the options that shape chunks (see IngestOptions)
    kb_version: str
    sources: dict[str, SourceEntry]
    # The kb_version last handed to a Bedrock ingestion job (S3 target), "" if none.
    knowledge_base_synced: str = ""

    def published(self) -> set[str]:
        """Sources that are part of the knowledge base (duplicates are not)."""
        return {name for name, entry in self.sources.items() if entry.duplicate_of is None}

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def parse_manifest(data: bytes) -> Manifest | None:
    """A manifest, or None when `data` is not one this code wrote (then everything is re-read)."""
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError:
        return None
    return manifest if manifest.format_version == MANIFEST_FORMAT else None


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
