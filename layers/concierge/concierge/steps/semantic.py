"""Semantic tier of the cache: find an earlier question close enough to answer this one, and
remember a newly answered question. The vectors' storage is concierge.adapters.dynamodb.semantic."""

from __future__ import annotations

from typing import Protocol

from concierge.adapters.embeddings.port import Embedder
from concierge.models.state import (
    QuestionScope,
    SemanticLookupInput,
    SemanticLookupOutput,
    SemanticRememberInput,
)


class Match(Protocol):
    @property
    def cache_key(self) -> str | None: ...

    @property
    def similarity(self) -> float: ...


class QuestionIndex(Protocol):
    def find(self, scope: QuestionScope, vector: list[float], threshold: float) -> Match: ...

    def remember(
        self,
        scope: QuestionScope,
        entry_key: str,
        vector: list[float],
        *,
        kb_version: str,
        expires_at: int,
    ) -> None: ...


def lookup(
    request: SemanticLookupInput, embedder: Embedder, index: QuestionIndex, threshold: float
) -> SemanticLookupOutput:
    (vector,) = embedder.embed([request.question])
    scope = QuestionScope(
        cache_scope=request.cache_scope, language=request.language, embedding_model=embedder.spec
    )
    match = index.find(scope, vector, threshold)
    return SemanticLookupOutput(
        match_key=match.cache_key,
        similarity=match.similarity,
        vector=[round(value, 5) for value in vector],
        embedding_model=embedder.spec,
    )


def remember(request: SemanticRememberInput, index: QuestionIndex) -> None:
    scope = QuestionScope(
        cache_scope=request.cache_scope,
        language=request.language,
        embedding_model=request.embedding_model,
    )
    index.remember(
        scope,
        request.cache_key,
        request.vector,
        kb_version=request.kb_version,
        expires_at=request.expires_at,
    )
