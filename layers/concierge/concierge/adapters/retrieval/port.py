"""The retriever port: search the knowledge base, optionally filtered by metadata; several
searches at once, and the fusion of their rankings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from concierge.models.state import Passage


class SearchFilter(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    category: str | None = None
    language: str | None = None


class Retriever(Protocol):
    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]: ...


# A query and its filter: one search of several made for one question.
Query = tuple[str, SearchFilter]
# Reciprocal rank fusion of the searches of one question (the question and its translation).
FUSION_K = 10


@runtime_checkable
class MultiRetriever(Protocol):
    """A backend that runs several searches together (Bedrock: concurrent Retrieve calls, so
    two take about the time of one)."""

    def search_many(self, queries: Sequence[Query], limit: int) -> list[list[Passage]]: ...


def search_each(retriever: Retriever, queries: Sequence[Query], limit: int) -> list[list[Passage]]:
    """One ranking per query, together where the backend can, else one after the other."""
    if isinstance(retriever, MultiRetriever):
        return retriever.search_many(queries, limit)
    return [retriever.search(query, search_filter, limit) for query, search_filter in queries]


def passage_key(passage: Passage) -> tuple[str, str]:
    """What makes two rankings' passages the same passage: its source and its text."""
    return passage.source, passage.text


def fuse(rankings: Sequence[list[Passage]], limit: int) -> list[Passage]:
    """Reciprocal rank fusion of best-first rankings: a passage scores the sum over rankings of
    1 / (FUSION_K + rank), divided by what first place in every ranking gives (1.0 at best).
    A passage is the same in two rankings when its source and text are; ties keep the order of
    the rankings (the question's before its translation's)."""
    if len(rankings) == 1:
        return rankings[0][:limit]
    best = len(rankings) / (FUSION_K + 1)
    scores: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], Passage] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking, start=1):
            key = passage_key(passage)
            scores[key] = scores.get(key, 0.0) + 1 / (FUSION_K + rank)
            first.setdefault(key, passage)
    order = {key: n for n, key in enumerate(first)}
    ranked = sorted(scores, key=lambda key: (-scores[key], order[key]))[:limit]
    return [first[key].model_copy(update={"score": round(scores[key] / best, 4)}) for key in ranked]
