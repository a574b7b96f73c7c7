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


class IndexFile(BaseModel):
    format_version: int = FORMAT_VERSION
    kb_version: str
    chunks: list[Chunk]

    @field_validator("format_version")
    @classmethod
    def _readable(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"index format {value} is newer than this code reads ({FORMAT_VERSION}): "
                "upgrade concierge or re-run `concierge ingest`"
            )
        return value
