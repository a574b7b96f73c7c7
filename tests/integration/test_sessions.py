"""Forgetting a session, flushing the cache, and keys going stale: against the emulated tables
the chain wrote."""

from __future__ import annotations

import uuid
from pathlib import Path
from unittest import mock

import boto3
import pytest
from local_api import answer, call, table_items

from concierge import wiring
from concierge.adapters.dynamodb.sessions import SessionStore
from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]


def sessions_in_history(runtime: LocalRuntime) -> list[str]:
    return sorted({item["session_id"]["S"] for item in table_items(runtime, "HistoryTable")})


def producers_in_cache(runtime: LocalRuntime) -> list[str]:
    return sorted(item["session_id"]["S"] for item in table_items(runtime, "CacheTable"))


def test_delete_session_removes_its_turns_and_the_cache_entries_it_produced(
    runtime: LocalRuntime,
) -> None:
    # Given Alice's two turns, Bob's turn, and Bob served an answer Alice's session cached
    answer(runtime, "How long is the warranty on backpacks?", "alice")
    answer(runtime, "Which of them is cheapest?", "alice")
    answer(runtime, "What do you sell?", "bob")
    bobs_repeat = answer(runtime, "How long is the warranty on backpacks?", "bob")
    # (the entry Bob is served stays Alice's, and goes with her)
    assert bobs_repeat["cached"] is True
    assert producers_in_cache(runtime) == ["alice", "alice", "bob"]

    # When Alice's session is deleted
    status, body = call(runtime, "DELETE", "/sessions/alice")

    # Then her two turns and the two cache entries she produced are reported deleted
    assert status == 200
    assert body == {"session_id": "alice", "turns": 2, "cache_entries": 2}
    # And only Bob's turns and entry are left
    assert sessions_in_history(runtime) == ["bob"]
    assert producers_in_cache(runtime) == ["bob"]
    # And nothing of Alice's answers is served any more
    assert answer(runtime, "How long is the warranty on backpacks?", "carol")["cached"] is False


def test_an_entry_another_session_stored_since_is_not_deleted(runtime: LocalRuntime) -> None:
    # Given Alice's cached answer, later replaced under the same key by Bob's (after her entry
    # expired, say)
    answer(runtime, "What do you sell?", "alice")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    (entry,) = table_items(runtime, "CacheTable")
    dynamodb.put_item(
        TableName=runtime.table_names["CacheTable"], Item={**entry, "session_id": {"S": "bob"}}
    )

    # When Alice's session is deleted
    _, body = call(runtime, "DELETE", "/sessions/alice")

    # Then no cache entry is deleted: Bob's stays
    assert body["cache_entries"] == 0
    assert producers_in_cache(runtime) == ["bob"]


def test_deleting_a_session_twice_or_an_unknown_one_is_a_404(
    runtime: LocalRuntime,
) -> None:
    # Given Alice's session, deleted once
    answer(runtime, "What do you sell?", "alice")
    first_status, _ = call(runtime, "DELETE", "/sessions/alice")
    assert first_status == 200

    # When it is deleted again, and a session that never existed is deleted
    again_status, again_body = call(runtime, "DELETE", "/sessions/alice")
    unknown_status, unknown_body = call(runtime, "DELETE", "/sessions/nobody")

    # Then neither exists any more: both are 404 not_found
    assert (again_status, again_body["error"]["code"]) == (404, "not_found")
    assert (unknown_status, unknown_body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("DELETE", "/sessions/not%20valid", 400),
        ("DELETE", "/sessions/", 400),
        ("GET", "/sessions/alice", 405),
    ],
)
def test_session_routes_reject_bad_requests(
    runtime: LocalRuntime, method: str, path: str, status: int
) -> None:
    # When a session route is called with a bad id or method
    answered_status, _ = call(runtime, method, path)

    # Then it is refused with the status of that mistake
    assert answered_status == status


def test_deletion_pages_through_long_sessions(runtime: LocalRuntime) -> None:
    # Given a session of 60 turns: more than one BatchWriteItem (25) can delete
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = runtime.table_names["HistoryTable"]
    for number in range(60):
        dynamodb.put_item(
            TableName=table,
            Item={
                "user_id": {"S": "local"},
                "session_id": {"S": "long"},
                "turn_key": {"S": f"long#{number:013d}#r{number}"},
                "question": {"S": "q"},
                "answer": {"S": "a"},
            },
        )
    store = SessionStore(dynamodb, table, runtime.table_names["CacheTable"])

    # When the session is deleted
    deletion = store.delete_session("local", "long")

    # Then all 60 turns are deleted, and none is left
    assert deletion.turns == 60
    assert sessions_in_history(runtime) == []


def test_flush_by_knowledge_base_version_keeps_the_other_versions(
    runtime: LocalRuntime,
) -> None:
    # Given two cache entries of an old knowledge base version and one of a new one
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = runtime.table_names["CacheTable"]
    for key, version in (("q#1", "old"), ("q#2", "old"), ("q#3", "new")):
        dynamodb.put_item(
            TableName=table, Item={"cache_key": {"S": key}, "kb_version": {"S": version}}
        )
    store = SessionStore(dynamodb, runtime.table_names["HistoryTable"], table)

    # When the cache is flushed for the old version
    old_flush = store.flush_cache(kb_version="old")

    # Then its two entries go, and the new version's stays
    assert old_flush.entries == 2
    assert [item["cache_key"]["S"] for item in table_items(runtime, "CacheTable")] == ["q#3"]

    # When the whole cache is flushed
    full_flush = store.flush_cache()

    # Then the last entry goes too
    assert full_flush.entries == 1
    assert table_items(runtime, "CacheTable") == []


def test_a_new_knowledge_base_version_never_serves_the_old_answers(
    tmp_path: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given a store, and a way to ask one question in a new session on a given version
    store = tmp_path / "tables.sqlite3"
    index_path, _ = sample_index

    def cached_after_asking(kb_version: str) -> bool:
        with LocalRuntime(REPO_ROOT, index_path, kb_version, state_path=store) as local:
            body = answer(local, "What do you sell?", uuid.uuid4().hex)
        return bool(body["cached"])

    # When the question is asked twice on v1, then twice on v2 (re-ingested)
    on_v1 = [cached_after_asking("v1"), cached_after_asking("v1")]
    on_v2 = [cached_after_asking("v2"), cached_after_asking("v2")]

    # Then on each version it is answered first, and served from the cache only after that
    assert on_v1 == [False, True]
    assert on_v2 == [False, True]


def test_a_new_prompt_version_never_serves_the_old_answers(runtime: LocalRuntime) -> None:
    # Given an answer cached under the current prompt versions
    assert answer(runtime, "What do you sell?", "s1")["cached"] is False
    assert answer(runtime, "What do you sell?", "s2")["cached"] is True

    # When the environment's label moves the answer prompt to another version (a promotion, or
    # a roll-back) and the same question is asked
    promoted = {"dev": {"classify": "classify-3", "condense": "condense-3", "answer": "answer-1"}}
    with mock.patch("concierge.prompt_library.labels", return_value=promoted):
        wiring.api_services.cache_clear()  # type: ignore[attr-defined]
        after_new_prompts = answer(runtime, "What do you sell?", "s3")
    wiring.api_services.cache_clear()  # type: ignore[attr-defined]

    # Then the old answer is not served from the cache
    assert after_new_prompts["cached"] is False
