"""Erasing a session and flushing the cache: the two tables outside a chat request.

Used by `DELETE /sessions/{id}` (the api function) and by `concierge history delete` /
`concierge cache flush`. Both are safe to run again after a failure part-way: cache entries go
first, then the history turns that point at them, so a re-run still finds what is left. Any
DynamoDB failure is a `StoreUnavailableError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel

from concierge.adapters.aws_errors import STORE, translated
from concierge.adapters.dynamodb.formats import CACHE_ENTRY, HISTORY_TURN
from concierge.adapters.dynamodb.semantic import SemanticIndex
from concierge.errors import StoreUnavailableError
from concierge.models.http import SessionDeletion

_BATCH = 25  # BatchWriteItem's limit
_BATCH_ATTEMPTS = 5


class CacheFlush(BaseModel):
    entries: int
    kb_version: str | None = None


class SessionStore:
    def __init__(
        self,
        client: Any,
        history_table: str,
        cache_table: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._history = history_table
        self._cache = cache_table
        self._semantic = SemanticIndex(client, cache_table)
        self._sleep = sleep

    def delete_session(self, session_id: str) -> SessionDeletion:
        """Everything stored for the session: its turns, the cache entries it produced and, in
        the semantic tier, their questions' vectors.

        An entry is deleted only while it still names this session: if another session has
        since stored an answer under the same key, that answer is theirs and stays."""
        with translated(STORE, "the session's tables"):
            turns = list(self._turns(session_id))
            produced = {HISTORY_TURN.read(turn, "cache_key") for turn in turns} - {None, ""}
            entries = sum(self._forget_entry(key, session_id) for key in sorted(produced))
            self._delete_all(
                self._history,
                [{name: turn[name] for name in ("session_id", "turn_key")} for turn in turns],
            )
        return SessionDeletion(session_id=session_id, turns=len(turns), cache_entries=entries)

    def flush_cache(self, kb_version: str | None = None) -> CacheFlush:
        """Delete every cache entry (and semantic bucket), or only those of `kb_version`."""
        with translated(STORE, "the cache table"):
            keys = [
                {"cache_key": item["cache_key"]}
                for item in self._pages(
                    self._client.scan,
                    TableName=self._cache,
                    ProjectionExpression=CACHE_ENTRY.projection("cache_key", "kb_version"),
                )
                if kb_version is None or CACHE_ENTRY.read(item, "kb_version") == kb_version
            ]
            self._delete_all(self._cache, keys)
        return CacheFlush(entries=len(keys), kb_version=kb_version)

    def _forget_entry(self, key: str, session_id: str) -> bool:
        entry = self._client.get_item(
            TableName=self._cache,
            Key={"cache_key": CACHE_ENTRY.value("cache_key", key)},
            ProjectionExpression=CACHE_ENTRY.projection("session_id", "semantic_bucket"),
            ConsistentRead=True,
        ).get("Item")
        if not entry or CACHE_ENTRY.read(entry, "session_id") != session_id:
            return False  # gone already, or another session's answer now
        if bucket := CACHE_ENTRY.read(entry, "semantic_bucket"):
            # The question's vector in the semantic tier is the session's too.
            self._semantic.forget(bucket, key)
        try:
            self._client.delete_item(
                TableName=self._cache,
                Key={"cache_key": CACHE_ENTRY.value("cache_key", key)},
                ConditionExpression="session_id = :session",
                ExpressionAttributeValues={":session": CACHE_ENTRY.value("session_id", session_id)},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # replaced by another session's answer in the meantime
        return True

    def _turns(self, session_id: str) -> Iterator[dict[str, Any]]:
        return self._pages(
            self._client.query,
            TableName=self._history,
            KeyConditionExpression="session_id = :session",
            ExpressionAttributeValues={":session": HISTORY_TURN.value("session_id", session_id)},
            ProjectionExpression=HISTORY_TURN.projection("session_id", "turn_key", "cache_key"),
        )

    @staticmethod
    def _pages(read: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
        """Every item of a Query or Scan, page after page."""
        while True:
            page = read(**request)
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete_all(self, table: str, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), _BATCH):
            pending = {
                table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]
            }
            for attempt in range(_BATCH_ATTEMPTS):
                if attempt:
                    self._sleep(0.05 * 2**attempt)
                # Throttled deletes come back as unprocessed: send them again, after a pause.
                reply = self._client.batch_write_item(RequestItems=pending)
                pending = reply.get("UnprocessedItems") or {}
                if not pending:
                    break
            if pending:
                raise StoreUnavailableError(
                    f"{table}: some items could not be deleted; run the command again"
                )
