"""Operations on the two tables outside a chat request: forget a session, flush the cache.

Used by `DELETE /sessions/{id}` (api function) and by `concierge history delete` /
`concierge cache flush`. Each is safe to run again after a failure part-way: cache entries go
first, then the history turns that point at them, so a re-run still finds what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from concierge import semantic_cache

_BATCH = 25  # BatchWriteItem's limit
_BATCH_ATTEMPTS = 5


class SessionDeletion(BaseModel):
    session_id: str
    turns: int
    cache_entries: int


class CacheFlush(BaseModel):
    entries: int
    kb_version: str | None = None


def delete_session(
    dynamodb: Any, history_table: str, cache_table: str, session_id: str
) -> SessionDeletion:
    """Everything stored for the session: its turns, the cache entries it produced and, in the
    semantic tier, their questions' vectors.

    An entry is deleted only while it still names this session: if another session has since
    stored an answer under the same key, that answer is theirs and stays."""
    turns = list(_session_turns(dynamodb, history_table, session_id))
    produced = {turn["cache_key"]["S"] for turn in turns if turn.get("cache_key", {}).get("S")}
    entries = 0
    for key in sorted(produced):
        entry = dynamodb.get_item(
            TableName=cache_table,
            Key={"cache_key": {"S": key}},
            ProjectionExpression="session_id, semantic_bucket",
            ConsistentRead=True,
        ).get("Item")
        if not entry or entry.get("session_id", {}).get("S") != session_id:
            continue  # gone already, or another session's answer now
        bucket = entry.get("semantic_bucket", {}).get("S")
        if bucket:
            # The question's vector in the semantic tier is the session's too.
            semantic_cache.forget(dynamodb, cache_table, bucket, key)
        try:
            dynamodb.delete_item(
                TableName=cache_table,
                Key={"cache_key": {"S": key}},
                ConditionExpression="session_id = :session",
                ExpressionAttributeValues={":session": {"S": session_id}},
            )
            entries += 1
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue  # replaced by another session's answer in the meantime
    _delete_all(
        dynamodb,
        history_table,
        [{"session_id": t["session_id"], "turn_key": t["turn_key"]} for t in turns],
    )
    return SessionDeletion(session_id=session_id, turns=len(turns), cache_entries=entries)


def flush_cache(dynamodb: Any, cache_table: str, kb_version: str | None = None) -> CacheFlush:
    """Delete every cache entry, or only those stored against knowledge-base `kb_version`."""
    keys = [
        {"cache_key": item["cache_key"]}
        for item in _scan(dynamodb, cache_table, "cache_key, kb_version")
        if kb_version is None or item.get("kb_version", {}).get("S") == kb_version
    ]
    _delete_all(dynamodb, cache_table, keys)
    return CacheFlush(entries=len(keys), kb_version=kb_version)


def _session_turns(dynamodb: Any, table: str, session_id: str) -> Iterator[dict[str, Any]]:
    return _items(
        dynamodb.query,
        TableName=table,
        KeyConditionExpression="session_id = :session",
        ExpressionAttributeValues={":session": {"S": session_id}},
        ProjectionExpression="session_id, turn_key, cache_key",
    )


def _scan(dynamodb: Any, table: str, projection: str) -> Iterator[dict[str, Any]]:
    return _items(dynamodb.scan, TableName=table, ProjectionExpression=projection)


def _items(read: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query or Scan, page after page."""
    while True:
        page = read(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _delete_all(dynamodb: Any, table: str, keys: list[dict[str, Any]]) -> None:
    for start in range(0, len(keys), _BATCH):
        pending = {table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]}
        for attempt in range(_BATCH_ATTEMPTS):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            # Throttled deletes come back as unprocessed: send them again, after a pause.
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
        if pending:
            raise StoreError(f"{table}: some items could not be deleted; run the command again")


class StoreError(RuntimeError):
    """A table operation could not complete; it is safe to run again."""
