"""The retriever port: search the knowledge base, optionally filtered by metadata."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from concierge.models.state import Passage


class SearchFilter(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    category: str | None = None
    language: str | None = None


class Retriever(Protocol):
    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]: ...
