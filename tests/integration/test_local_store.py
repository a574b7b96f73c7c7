"""The local runtime's tables in their SQLite store: what the chain writes is there after a
restart, in another process, and without reading the rest of the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from local_api import answer, table_items

from concierge.adapters.llm.offline import OfflineModel
from concierge.knowledge import IndexFile
from concierge_cli.local import tables
from concierge_cli.local.runtime import REGION, LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "tables.sqlite3"


def runtime_on(store: Path, sample_index: tuple[Path, IndexFile]) -> LocalRuntime:
    index_path, index = sample_index
    return LocalRuntime(REPO_ROOT, index_path, index.kb_version, state_path=store)


def turns_of(runtime: LocalRuntime, session: str, user: str = "local") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=REGION).query(
        TableName=runtime.table_names["HistoryTable"],
        KeyConditionExpression="user_id = :u AND begins_with(turn_key, :s)",
        ExpressionAttributeValues={":u": {"S": user}, ":s": {"S": f"{session}#"}},
    )["Items"]
    return items


def hits(runtime: LocalRuntime) -> dict[str, int]:
    return {
        item["session_id"]["S"]: int(item.get("hits", {"N": "0"})["N"])
        for item in table_items(runtime, "CacheTable")
    }


def test_a_session_continues_after_a_restart(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given a runtime that answered Alice's first question, then stopped
    with runtime_on(store, sample_index) as first:
        answer(first, "What do you sell?", "alice")

    with runtime_on(store, sample_index) as second:
        # And a second runtime on the same store, which finds her turn
        assert len(turns_of(second, "alice")) == 1
        tasks: list[str] = []
        generate = OfflineModel.generate

        def spy(model: OfflineModel, request: Any) -> Any:
            tasks.append(request.task)
            return generate(model, request)

        # When Alice asks a follow-up there
        with mock.patch.object(OfflineModel, "generate", spy):
            follow_up = answer(second, "Which of them is cheapest?", "alice")

        # Then her first turn was read as history: the follow-up was condensed against it
        assert sorted(tasks) == ["answer", "condense"]
        assert "Pika" in follow_up["answer"]
        # And both her turns are stored, in order
        assert [turn["question"]["S"] for turn in turns_of(second, "alice")] == [
            "What do you sell?",
            "Which of them is cheapest?",
        ]


def test_the_hit_counter_survives_a_restart(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given Alice's answer, cached and then served once from the cache to Bob
    with runtime_on(store, sample_index) as first:
        answer(first, "What do you sell?", "alice")
        bobs = answer(first, "What do you sell?", "bob")
        assert bobs["cached"] is True
        assert hits(first) == {"alice": 1}  # UpdateItem's change reached the store

    # When Carol asks the same after a restart
    with runtime_on(store, sample_index) as second:
        carols = answer(second, "What do you sell?", "carol")

        # Then she is served the cached answer, and its counter goes on from 1 to 2
        assert carols["cached"] is True
        assert hits(second) == {"alice": 2}


def test_a_request_reads_its_session_not_the_whole_table(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    with runtime_on(store, sample_index) as runtime:
        # Given 900 turns of 300 other users, and Alice's first turn
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        others = [
            {
                "PutRequest": {
                    "Item": {
                        "user_id": {"S": f"other-{number // 3}"},
                        "session_id": {"S": "s"},
                        "turn_key": {"S": f"s#{number:013d}#r{number}"},
                        "question": {"S": "q"},
                        "answer": {"S": "a"},
                    }
                }
            }
            for number in range(900)
        ]
        for start in range(0, len(others), 25):
            dynamodb.batch_write_item(
                RequestItems={runtime.table_names["HistoryTable"]: others[start : start + 25]}
            )
        answer(runtime, "What do you sell?", "alice")

        # When Alice asks a follow-up, counting the items decoded from the store
        with mock.patch.object(tables, "_item", wraps=tables._item) as decoded:
            answer(runtime, "Which of them is cheapest?", "alice")

        # Then only Alice's turn and the cache items the request touches were decoded, not the
        # 900 other turns
        assert 0 < decoded.call_count < 20
        # And all the turns are still there, hers included
        assert len(table_items(runtime, "HistoryTable")) == 902


def test_another_process_sees_the_writes_and_its_writes_are_seen(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    with runtime_on(store, sample_index) as runtime:
        # Given a running runtime (a server, say) that answered Alice twice and Bob once
        answer(runtime, "What do you sell?", "alice")
        answer(runtime, "Which of them is cheapest?", "alice")
        answer(runtime, "How long is the warranty on backpacks?", "bob")
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CONCIERGE_", "POWERTOOLS_"))
        }
        command = [sys.executable, "-m", "concierge_cli.main", "--root", str(REPO_ROOT)]

        # When another process runs `concierge history delete` for Alice on the same store
        done = subprocess.run(
            [*command, "history", "delete", "--session", "alice", "--state", str(store)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )

        # Then that process found Alice's two turns and two cache entries, and deleted them
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"session_id": "alice", "turns": 2, "cache_entries": 2}
        # And the running runtime sees them gone at once: only Bob's cache entry is left
        assert turns_of(runtime, "alice") == []
        assert sorted(hits(runtime)) == ["bob"]
        assert answer(runtime, "What do you sell?", "carol")["cached"] is False


def test_an_earlier_versions_state_file_is_moved_into_the_store_once(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given an earlier version's state file (before users), with a turn, a cache entry and a
    # table now gone
    turn = {
        "session_id": {"S": "alice"},
        "turn_key": {"S": "0000000000001#r1"},
        "question": {"S": "What do you sell?"},
        "answer": {"S": "Gear."},
    }
    entry = {"cache_key": {"S": "q#1"}, "kb_version": {"S": "v1"}, "entries": {"M": {}}}
    # They were the local user's: the only user of an earlier local run
    owned_turn = {**turn, "user_id": {"S": "local"}, "turn_key": {"S": "alice#0000000000001#r1"}}
    owned_entry = {**entry, "user_id": {"S": "local"}}
    legacy = store.with_name("state.json")
    saved = {"HistoryTable": [turn], "CacheTable": [entry], "GoneTable": [{}]}
    legacy.write_text(json.dumps(saved), "utf-8")

    # When a runtime starts on the store
    with runtime_on(store, sample_index) as runtime:
        # Then it finds the turn and the cache entry in its tables
        assert table_items(runtime, "HistoryTable") == [owned_turn]
        assert table_items(runtime, "CacheTable") == [owned_entry]
        # Given that entry, deleted before the runtime stops
        boto3.client("dynamodb", region_name=REGION).delete_item(
            TableName=runtime.table_names["CacheTable"], Key={"cache_key": {"S": "q#1"}}
        )
    # Then the state file has been renamed out of the way, its content kept
    assert not legacy.exists()
    assert json.loads(store.with_name("state.json.migrated").read_text("utf-8")) == saved

    # When a runtime starts on the store again
    with runtime_on(store, sample_index) as runtime:
        # Then the turn is still there, and the deleted entry is not imported again
        assert table_items(runtime, "HistoryTable") == [owned_turn]
        assert table_items(runtime, "CacheTable") == []
