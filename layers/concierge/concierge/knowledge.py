"""The knowledge base as data: the chunks ingestion writes and retrievers search."""

from __future__ import annotations

from pydantic import BaseModel, field_validator

# Version 1 index files written before chunk ids and headings existed still load: the newer
# fields have defaults. A file of a newer format than this code reads is refused by name.
FORMAT_VERSION = 1


class Chunk(BaseModel):
    source: str
    title: str
    text: str
    category: str
    language: str
    # `<source>#<n>`, n counting from 1 in document order; "" in files written before ids.
    chunk_id: str = ""
    # The nearest `#`/`##` heading above the chunk, without the marks ("" when there is none).
    heading: str = ""


class ChunkVectors(BaseModel):
    """The chunks' dense vectors (`concierge.adapters.embeddings.static`), compactly."""

    # `<name>@<hash>` of the model that embedded the chunks: a query embedded by another model
    # is not compared with them.
    model: str
    dimensions: int
    # Base64 of len(chunks) x dimensions int8, one row per chunk in chunk order, each row scaled
    # so its largest component is +-127. Rows are normalised again when loaded: cosine needs no
    # stored scale.
    vectors: str


class IndexFile(BaseModel):
    format_version: int = FORMAT_VERSION
    kb_version: str
    chunks: list[Chunk]
    # None: written without the `dense` extra, or before vectors existed (search is lexical).
    embeddings: ChunkVectors | None = None

    @field_validator("format_version")
    @classmethod
    def _readable(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"index format {value} is newer than this code reads ({FORMAT_VERSION}): "
                "upgrade concierge or re-run `concierge ingest`"
            )
        return value
