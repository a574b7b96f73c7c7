"""The knowledge base as data: the chunks ingestion writes and retrievers search."""

from __future__ import annotations

from pydantic import BaseModel

FORMAT_VERSION = 1


class Chunk(BaseModel):
    source: str
    title: str
    text: str
    category: str
    language: str


class IndexFile(BaseModel):
    format_version: int = FORMAT_VERSION
    kb_version: str
    chunks: list[Chunk]
