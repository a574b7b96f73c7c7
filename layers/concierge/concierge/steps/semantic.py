"""Semantic tier of the cache: find an earlier question close enough to answer this one, and
remember a newly answered question. See concierge.semantic_cache for how it is stored."""

from __future__ import annotations

from typing import Any

from concierge import semantic_cache
from concierge.models.state import SemanticLookupInput, SemanticLookupOutput, SemanticRememberInput


def lookup(
    request: SemanticLookupInput, embedder: Any, dynamodb: Any, table: str, threshold: float
) -> SemanticLookupOutput:
    (vector,) = embedder.embed([request.question])
    match = semantic_cache.find(
        dynamodb,
        table,
        semantic_cache.bucket_key(request.cache_scope, request.language, embedder.spec),
        vector,
        threshold,
    )
    return SemanticLookupOutput(
        match_key=match.cache_key,
        similarity=match.similarity,
        vector=[round(value, 5) for value in vector],
        embedding_model=embedder.spec,
    )


def remember(request: SemanticRememberInput, dynamodb: Any, table: str) -> None:
    semantic_cache.remember(
        dynamodb,
        table,
        semantic_cache.bucket_key(request.cache_scope, request.language, request.embedding_model),
        request.cache_key,
        request.vector,
        kb_version=request.kb_version,
        expires_at=request.expires_at,
    )
