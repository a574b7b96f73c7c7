"""The optional semantic tier of the answer cache: question vectors next to the exact entries.

Off by default. When the exact lookup misses, the question's vector is compared with the
vectors of earlier questions that were answered against the same knowledge, prompts, answer
model and language — one *bucket* per such scope — and the closest one at or above the
threshold names the exact entry to serve instead. Nothing crosses a bucket: never another
language, never another knowledge-base version.

A bucket is one item of the cache table (key `sem#…`), a map from exact cache key to the
question's vector, quantised to one signed byte per dimension. One GetItem reads a bucket, so a
lookup costs one read and a scan over its vectors; an item holds at most 400 KB, a few hundred
questions at these sizes. When a bucket is full, new questions are simply not remembered (the
write fails and is counted): this tier is for the head of a question distribution, not a
vector database.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from concierge.adapters.embeddings.port import cosine

BUCKET_PREFIX = "sem#"
_SEPARATOR = "\x1f"
_LEVELS = 127


class SemanticMatch(BaseModel):
    """The closest earlier question at or above the threshold, or none (`cache_key` None)."""

    cache_key: str | None
    similarity: float


def bucket_key(scope: str, language: str, embedding_model: str) -> str:
    """The bucket of questions that may share answers: same scope (knowledge-base version,
    prompt versions, answer model) and same language — and vectors of one embedding model,
    since another model's vectors are not comparable."""
    material = _SEPARATOR.join((scope, language, embedding_model)).encode("utf-8")
    return BUCKET_PREFIX + hashlib.sha256(material).hexdigest()


def pack(vector: list[float]) -> bytes:
    """A unit vector as one signed byte per dimension (cosine error well under 0.01)."""
    return bytes(max(-_LEVELS, min(_LEVELS, round(value * _LEVELS))) & 0xFF for value in vector)


def unpack(data: bytes) -> list[float]:
    return [(byte - 256 if byte > _LEVELS else byte) / _LEVELS for byte in data]


def find(
    dynamodb: Any, table: str, bucket: str, vector: list[float], threshold: float
) -> SemanticMatch:
    item = dynamodb.get_item(
        TableName=table, Key={"cache_key": {"S": bucket}}, ProjectionExpression="entries"
    ).get("Item")
    best = SemanticMatch(cache_key=None, similarity=0.0)
    for key, value in (item or {}).get("entries", {}).get("M", {}).items():
        score = cosine(vector, unpack(value["B"]))
        if score > best.similarity:
            best = SemanticMatch(cache_key=key, similarity=round(score, 4))
    if best.similarity < threshold:
        return SemanticMatch(cache_key=None, similarity=best.similarity)
    return best


def remember(
    dynamodb: Any,
    table: str,
    bucket: str,
    entry_key: str,
    vector: list[float],
    *,
    kb_version: str,
    expires_at: int,
) -> None:
    """Add the question behind `entry_key` to its bucket, and mark the entry with its bucket so
    that deleting the entry can take the vector too."""
    values = {
        ":vector": {"B": pack(vector)},
        ":kb": {"S": kb_version},
        ":expires": {"N": str(expires_at)},
    }
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"cache_key": {"S": bucket}},
            UpdateExpression="SET entries.#entry = :vector, kb_version = :kb, expires_at = :expires",
            ConditionExpression="attribute_exists(entries)",
            ExpressionAttributeNames={"#entry": entry_key},
            ExpressionAttributeValues=values,
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        # The bucket's first question. Two first questions at once: the second write is refused
        # and that question is not remembered — a cheaper loss than a read-modify-write.
        dynamodb.put_item(
            TableName=table,
            Item={
                "cache_key": {"S": bucket},
                "entries": {"M": {entry_key: values[":vector"]}},
                "kb_version": values[":kb"],
                "expires_at": values[":expires"],
            },
            ConditionExpression="attribute_not_exists(cache_key)",
        )
    dynamodb.update_item(
        TableName=table,
        Key={"cache_key": {"S": entry_key}},
        UpdateExpression="SET semantic_bucket = :bucket",
        ConditionExpression="attribute_exists(cache_key)",
        ExpressionAttributeValues={":bucket": {"S": bucket}},
    )


def forget(dynamodb: Any, table: str, bucket: str, entry_key: str) -> None:
    """Take the vector of `entry_key`'s question out of `bucket`."""
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"cache_key": {"S": bucket}},
            UpdateExpression="REMOVE entries.#entry",
            ConditionExpression="attribute_exists(entries)",
            ExpressionAttributeNames={"#entry": entry_key},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return  # the bucket is gone (expired or flushed), and the vector with it
