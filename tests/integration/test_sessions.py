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
    answer(runtime, "How long is the warranty on backpacks?", "alice")
    answer(runtime, "Which of them is cheapest?", "alice")
    answer(runtime, "What do you sell?", "bob")
    # Bob is served Alice's entry: it stays hers, and goes with her.
    assert answer(runtime, "How long is the warranty on backpacks?", "bob")["cached"] is True
    assert producers_in_cache(runtime) == ["alice", "alice", "bob"]

    status, body = call(runtime, "DELETE", "/sessions/alice")

    assert status == 200
    assert body == {"session_id": "alice", "turns": 2, "cache_entries": 2}
    assert sessions_in_history(runtime) == ["bob"]
    assert producers_in_cache(runtime) == ["bob"]
    # Nothing of Alice's answers is served any more.
    assert answer(runtime, "How long is the warranty on backpacks?", "carol")["cached"] is False


def test_an_entry_another_session_stored_since_is_not_deleted(runtime: LocalRuntime) -> None:
    answer(runtime, "What do you sell?", "alice")
    # Later Bob's answer replaces Alice's under the same key (after her entry expired, say).
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    (entry,) = table_items(runtime, "CacheTable")
    dynamodb.put_item(
        TableName=runtime.table_names["CacheTable"], Item={**entry, "session_id": {"S": "bob"}}
    )

    _, body = call(runtime, "DELETE", "/sessions/alice")

    assert body["cache_entries"] == 0
    assert producers_in_cache(runtime) == ["bob"]


def test_deleting_a_session_twice_or_an_unknown_one_deletes_nothing(
    runtime: LocalRuntime,
) -> None:
    answer(runtime, "What do you sell?", "alice")
    assert call(runtime, "DELETE", "/sessions/alice")[0] == 200
    assert call(runtime, "DELETE", "/sessions/alice")[1] == {
        "session_id": "alice",
        "turns": 0,
        "cache_entries": 0,
    }


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
    assert call(runtime, method, path)[0] == status


def test_deletion_pages_through_long_sessions(runtime: LocalRuntime) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = runtime.table_names["HistoryTable"]
    for number in range(60):  # more than one BatchWriteItem (25)
        dynamodb.put_item(
            TableName=table,
            Item={
                "session_id": {"S": "long"},
                "turn_key": {"S": f"{number:013d}#r{number}"},
                "question": {"S": "q"},
                "answer": {"S": "a"},
            },
        )
    deletion = SessionStore(dynamodb, table, runtime.table_names["CacheTable"]).delete_session(
        "long"
    )
    assert deletion.turns == 60
    assert sessions_in_history(runtime) == []


def test_flush_by_knowledge_base_version_keeps_the_other_versions(
    runtime: LocalRuntime,
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = runtime.table_names["CacheTable"]
    for key, version in (("q#1", "old"), ("q#2", "old"), ("q#3", "new")):
        dynamodb.put_item(
            TableName=table, Item={"cache_key": {"S": key}, "kb_version": {"S": version}}
        )

    store = SessionStore(dynamodb, runtime.table_names["HistoryTable"], table)
    assert store.flush_cache(kb_version="old").entries == 2
    assert [item["cache_key"]["S"] for item in table_items(runtime, "CacheTable")] == ["q#3"]
    assert store.flush_cache().entries == 1
    assert table_items(runtime, "CacheTable") == []


def test_a_new_knowledge_base_version_never_serves_the_old_answers(
    tmp_path: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    store = tmp_path / "tables.sqlite3"
    index_path, _ = sample_index

    def cached_after_asking(kb_version: str) -> bool:
        with LocalRuntime(REPO_ROOT, index_path, kb_version, state_path=store) as local:
            body = answer(local, "What do you sell?", uuid.uuid4().hex)
        return bool(body["cached"])

    assert cached_after_asking("v1") is False
    assert cached_after_asking("v1") is True
    # Re-ingested: the same question is answered from the new knowledge, then cached for it.
    assert cached_after_asking("v2") is False
    assert cached_after_asking("v2") is True


def test_a_new_prompt_version_never_serves_the_old_answers(runtime: LocalRuntime) -> None:
    assert answer(runtime, "What do you sell?", "s1")["cached"] is False
    assert answer(runtime, "What do you sell?", "s2")["cached"] is True
    with mock.patch(
        "concierge.prompt_library.prompt_versions", return_value="classify-1,condense-2,answer-2"
    ):
        wiring.api_services.cache_clear()  # type: ignore[attr-defined]
        assert answer(runtime, "What do you sell?", "s3")["cached"] is False
    wiring.api_services.cache_clear()  # type: ignore[attr-defined]
