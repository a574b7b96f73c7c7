"""The semantic tier's question vectors, next to the exact entries in the cache table.

A bucket is one item (format `SEMANTIC_BUCKET`, key `sem#…`) per scope of questions that may
share answers: the same knowledge-base version, prompt versions and answer model (the cache
scope), the same language, and vectors of one embedding model. It maps an exact cache key to
its question's vector, quantised to one signed byte per dimension. One GetItem reads a bucket,
so a lookup costs one read and a scan over its vectors; an item holds at most 400 KB, a few
hundred questions at these sizes. When a bucket is full, new questions are simply not
remembered (the write fails and is counted): this tier is for the head of a question
distribution, not a vector database.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from concierge.adapters.dynamodb.formats import CACHE_ENTRY, SEMANTIC_BUCKET
from concierge.adapters.embeddings.port import cosine
from concierge.models.state import QuestionScope

BUCKET_PREFIX = "sem#"
_SEPARATOR = "\x1f"
_LEVELS = 127


class SemanticMatch(BaseModel):
    """The closest earlier question at or above the threshold, or none (`cache_key` None)."""

    cache_key: str | None
    similarity: float


def bucket_key(scope: QuestionScope) -> str:
    """Vectors of another embedding model are not comparable, so the model is part of the key."""
    material = _SEPARATOR.join((scope.cache_scope, scope.language, scope.embedding_model)).encode(
        "utf-8"
    )
    return BUCKET_PREFIX + hashlib.sha256(material).hexdigest()


def pack(vector: list[float]) -> bytes:
    """A unit vector as one signed byte per dimension (cosine error well under 0.01)."""
    return bytes(max(-_LEVELS, min(_LEVELS, round(value * _LEVELS))) & 0xFF for value in vector)


def unpack(data: bytes) -> list[float]:
    return [(byte - 256 if byte > _LEVELS else byte) / _LEVELS for byte in data]


class SemanticIndex:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def find(self, scope: QuestionScope, vector: list[float], threshold: float) -> SemanticMatch:
        """The closest earlier question of the same scope at or above `threshold`."""
        bucket = bucket_key(scope)
        item = self._client.get_item(
            TableName=self._table,
            Key={"cache_key": SEMANTIC_BUCKET.value("cache_key", bucket)},
            ProjectionExpression=SEMANTIC_BUCKET.projection("entries"),
        ).get("Item")
        best = SemanticMatch(cache_key=None, similarity=0.0)
        for key, value in (SEMANTIC_BUCKET.read(item or {}, "entries") or {}).items():
            score = cosine(vector, unpack(value["B"]))
            if score > best.similarity:
                best = SemanticMatch(cache_key=key, similarity=round(score, 4))
        if best.similarity < threshold:
            return SemanticMatch(cache_key=None, similarity=best.similarity)
        return best

    def remember(
        self,
        scope: QuestionScope,
        entry_key: str,
        vector: list[float],
        *,
        kb_version: str,
        expires_at: int,
    ) -> None:
        """Add the question behind `entry_key` to its bucket, and mark the entry with its
        bucket so that deleting the entry can take the vector too."""
        bucket = bucket_key(scope)
        values = {
            ":vector": {"B": pack(vector)},
            ":kb": SEMANTIC_BUCKET.value("kb_version", kb_version),
            ":expires": SEMANTIC_BUCKET.value("expires_at", expires_at),
        }
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"cache_key": SEMANTIC_BUCKET.value("cache_key", bucket)},
                UpdateExpression=(
                    "SET entries.#entry = :vector, kb_version = :kb, expires_at = :expires"
                ),
                ConditionExpression="attribute_exists(entries)",
                ExpressionAttributeNames={"#entry": entry_key},
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # The bucket's first question. Two first questions at once: the second write is
            # refused and that question is not remembered — a cheaper loss than a
            # read-modify-write.
            self._client.put_item(
                TableName=self._table,
                Item=SEMANTIC_BUCKET.item(
                    cache_key=bucket,
                    entries={entry_key: values[":vector"]},
                    kb_version=kb_version,
                    expires_at=expires_at,
                ),
                ConditionExpression="attribute_not_exists(cache_key)",
            )
        self._client.update_item(
            TableName=self._table,
            Key={"cache_key": CACHE_ENTRY.value("cache_key", entry_key)},
            UpdateExpression="SET semantic_bucket = :bucket",
            ConditionExpression="attribute_exists(cache_key)",
            ExpressionAttributeValues={":bucket": CACHE_ENTRY.value("semantic_bucket", bucket)},
        )

    def forget(self, bucket: str, entry_key: str) -> None:
        """Take the vector of `entry_key`'s question out of `bucket`."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"cache_key": SEMANTIC_BUCKET.value("cache_key", bucket)},
                UpdateExpression="REMOVE entries.#entry",
                ConditionExpression="attribute_exists(entries)",
                ExpressionAttributeNames={"#entry": entry_key},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return  # the bucket is gone (expired or flushed), and the vector with it
