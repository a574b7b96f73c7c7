"""Erasing what a user stored, and flushing the cache: the tables outside a chat request.

Used by `DELETE /sessions/{id}`, `DELETE /users/{sub}` and `POST /admin/cache/flush` (the api
function) and by `concierge history delete` / `user delete` / `cache flush`. Each is safe to run
again after a failure part-way: cache entries go first, then the ratings, then the history
turns, so a re-run still finds what is left. Any DynamoDB failure is a `StoreUnavailableError`.

A user's ratings (`FEEDBACK`) are one partition of the feedback table; a session's are the
items of that partition naming the session (a Query of the partition with a filter: a user's
ratings are few and expire with the table's TTL). They go with the session: a rating carries
the user's own words about an answer of that conversation.

A user's cache entries are found through the cache table's index of producers
(`CACHE_BY_PRODUCER`), not through their history, so an entry whose turn was never written
(history down at the time) is erased too. An entry is deleted only while it still names the
user and session being erased: if someone else has since stored an answer under the same key,
that answer is theirs and stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from concierge.adapters.aws_errors import STORE, translated
from concierge.adapters.dynamodb.formats import (
    BUDGET_DAY,
    CACHE_BY_PRODUCER,
    CACHE_ENTRY,
    FEEDBACK,
    HISTORY_TURN,
)
from concierge.adapters.dynamodb.semantic import SemanticIndex
from concierge.errors import StoreUnavailableError
from concierge.models.http import CacheFlush, SessionDeletion, UserDeletion

_BATCH = 25  # BatchWriteItem's limit
_BATCH_ATTEMPTS = 5


class SessionStore:
    def __init__(
        self,
        client: Any,
        history_table: str,
        cache_table: str,
        budget_table: str | None = None,
        *,
        feedback_table: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._history = history_table
        self._cache = cache_table
        self._budget = budget_table
        self._feedback = feedback_table
        self._semantic = SemanticIndex(client, cache_table)
        self._sleep = sleep

    def delete_session(self, user_id: str, session_id: str) -> SessionDeletion:
        """One session of one user: its turns, the cache entries its questions produced and,
        in the semantic tier, their questions' vectors, and the user's ratings of its answers.
        Zeros: there was no such session in the user's space (another user's session of the
        same name is not theirs to see); ratings left of a session whose turns have expired
        are deleted all the same, and not counted (a rating is not a session)."""
        with translated(STORE, "the session's tables"):
            entries = self._forget_entries(user_id, session_id)
            self._delete_feedback(user_id, session_id)
            turns = self._delete_turns(user_id, session_id)
        return SessionDeletion(session_id=session_id, turns=turns, cache_entries=entries)

    def delete_user(self, user_id: str) -> UserDeletion:
        """Everything stored for a user: every session's turns, the cache entries their
        questions produced with their vectors, their budgets and their ratings."""
        with translated(STORE, "the user's tables"):
            entries = self._forget_entries(user_id)
            feedback = self._delete_feedback(user_id)
            turns = self._delete_turns(user_id)
            budget_days = self._delete_budgets(user_id)
        return UserDeletion(
            user_id=user_id,
            turns=turns,
            cache_entries=entries,
            budget_days=budget_days,
            feedback=feedback,
        )

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

    # -- cache entries -----------------------------------------------------------------------
    def _forget_entries(self, user_id: str, session_id: str | None = None) -> int:
        condition = "user_id = :user"
        values = {":user": CACHE_ENTRY.value("user_id", user_id)}
        if session_id is not None:
            condition += " AND session_id = :session"
            values[":session"] = CACHE_ENTRY.value("session_id", session_id)
        produced = self._pages(
            self._client.query,
            TableName=self._cache,
            IndexName=CACHE_BY_PRODUCER,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return sum(self._forget_entry(entry) for entry in list(produced))

    def _forget_entry(self, entry: dict[str, Any]) -> bool:
        """Delete one entry the index named, unless someone else has replaced it since (the
        index is eventually consistent: the condition is what decides)."""
        key = CACHE_ENTRY.read(entry, "cache_key")
        try:
            self._client.delete_item(
                TableName=self._cache,
                Key={"cache_key": CACHE_ENTRY.value("cache_key", key)},
                ConditionExpression="user_id = :user AND session_id = :session",
                ExpressionAttributeValues={
                    ":user": entry["user_id"],
                    ":session": entry["session_id"],
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False  # gone, or another producer's answer now
        if bucket := CACHE_ENTRY.read(entry, "semantic_bucket"):
            # The question's vector in the semantic tier was theirs too.
            self._semantic.forget(bucket, key)
        return True

    # -- history and budgets -----------------------------------------------------------------
    def _delete_turns(self, user_id: str, session_id: str | None = None) -> int:
        condition = "user_id = :user"
        values = {":user": HISTORY_TURN.value("user_id", user_id)}
        if session_id is not None:
            condition += " AND begins_with(turn_key, :session)"
            values[":session"] = HISTORY_TURN.value("turn_key", f"{session_id}#")
        keys = [
            {name: turn[name] for name in ("user_id", "turn_key")}
            for turn in self._pages(
                self._client.query,
                TableName=self._history,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ProjectionExpression=HISTORY_TURN.projection("user_id", "turn_key"),
            )
        ]
        self._delete_all(self._history, keys)
        return len(keys)

    def _delete_budgets(self, user_id: str) -> int:
        if self._budget is None:
            return 0
        keys = [
            {name: day[name] for name in ("user_id", "utc_day")}
            for day in self._pages(
                self._client.query,
                TableName=self._budget,
                KeyConditionExpression="user_id = :user",
                ExpressionAttributeValues={":user": BUDGET_DAY.value("user_id", user_id)},
                ProjectionExpression=BUDGET_DAY.projection("user_id", "utc_day"),
            )
        ]
        self._delete_all(self._budget, keys)
        return len(keys)

    def _delete_feedback(self, user_id: str, session_id: str | None = None) -> int:
        if self._feedback is None:
            return 0
        request: dict[str, Any] = {
            "TableName": self._feedback,
            "KeyConditionExpression": "user_id = :user",
            "ExpressionAttributeValues": {":user": FEEDBACK.value("user_id", user_id)},
            "ProjectionExpression": FEEDBACK.projection("user_id", "request_id"),
        }
        if session_id is not None:
            request["FilterExpression"] = "session_id = :session"
            request["ExpressionAttributeValues"][":session"] = FEEDBACK.value(
                "session_id", session_id
            )
        keys = [
            {name: rating[name] for name in ("user_id", "request_id")}
            for rating in self._pages(self._client.query, **request)
        ]
        self._delete_all(self._feedback, keys)
        return len(keys)

    # -- paging and batches ------------------------------------------------------------------
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
