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


def turns_of(runtime: LocalRuntime, session: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=REGION).query(
        TableName=runtime.table_names["HistoryTable"],
        KeyConditionExpression="session_id = :s",
        ExpressionAttributeValues={":s": {"S": session}},
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
    with runtime_on(store, sample_index) as first:
        answer(first, "What do you sell?", "alice")

    with runtime_on(store, sample_index) as second:
        assert len(turns_of(second, "alice")) == 1
        tasks: list[str] = []
        generate = OfflineModel.generate

        def spy(model: OfflineModel, request: Any) -> Any:
            tasks.append(request.task)
            return generate(model, request)

        with mock.patch.object(OfflineModel, "generate", spy):
            follow_up = answer(second, "Which of them is cheapest?", "alice")
        # The first turn was read as history: the follow-up was condensed against it.
        assert sorted(tasks) == ["answer", "condense"]
        assert "Pika" in follow_up["answer"]
        assert [turn["question"]["S"] for turn in turns_of(second, "alice")] == [
            "What do you sell?",
            "Which of them is cheapest?",
        ]


def test_the_hit_counter_survives_a_restart(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    with runtime_on(store, sample_index) as first:
        answer(first, "What do you sell?", "alice")
        assert answer(first, "What do you sell?", "bob")["cached"] is True
        assert hits(first) == {"alice": 1}  # UpdateItem's change reached the store

    with runtime_on(store, sample_index) as second:
        assert answer(second, "What do you sell?", "carol")["cached"] is True
        assert hits(second) == {"alice": 2}


def test_a_request_reads_its_session_not_the_whole_table(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    with runtime_on(store, sample_index) as runtime:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        others = [
            {
                "PutRequest": {
                    "Item": {
                        "session_id": {"S": f"other-{number // 3}"},
                        "turn_key": {"S": f"{number:013d}#r{number}"},
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

        with mock.patch.object(tables, "_item", wraps=tables._item) as decoded:
            answer(runtime, "Which of them is cheapest?", "alice")

        # Alice's turn and whatever cache items the request touches; not the 900 other turns.
        assert 0 < decoded.call_count < 20
        assert len(table_items(runtime, "HistoryTable")) == 902


def test_another_process_sees_the_writes_and_its_writes_are_seen(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    with runtime_on(store, sample_index) as runtime:
        answer(runtime, "What do you sell?", "alice")
        answer(runtime, "Which of them is cheapest?", "alice")
        answer(runtime, "How long is the warranty on backpacks?", "bob")

        # `concierge history delete` while this runtime (a server, say) keeps running.
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CONCIERGE_", "POWERTOOLS_"))
        }
        command = [sys.executable, "-m", "concierge_cli.main", "--root", str(REPO_ROOT)]
        done = subprocess.run(
            [*command, "history", "delete", "--session", "alice", "--state", str(store)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
            check=False,
        )

        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"session_id": "alice", "turns": 2, "cache_entries": 2}
        assert turns_of(runtime, "alice") == []
        assert sorted(hits(runtime)) == ["bob"]
        assert answer(runtime, "What do you sell?", "carol")["cached"] is False


def test_an_earlier_versions_state_file_is_moved_into_the_store_once(
    store: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    turn = {
        "session_id": {"S": "alice"},
        "turn_key": {"S": "0000000000001#r1"},
        "question": {"S": "What do you sell?"},
        "answer": {"S": "Gear."},
    }
    entry = {"cache_key": {"S": "q#1"}, "kb_version": {"S": "v1"}, "entries": {"M": {}}}
    legacy = store.with_name("state.json")
    legacy.write_text(
        json.dumps({"HistoryTable": [turn], "CacheTable": [entry], "GoneTable": [{}]}), "utf-8"
    )

    with runtime_on(store, sample_index) as runtime:
        assert table_items(runtime, "HistoryTable") == [turn]
        assert table_items(runtime, "CacheTable") == [entry]
        boto3.client("dynamodb", region_name=REGION).delete_item(
            TableName=runtime.table_names["CacheTable"], Key={"cache_key": {"S": "q#1"}}
        )
    assert not legacy.exists()
    assert json.loads(store.with_name("state.json.migrated").read_text("utf-8"))

    with runtime_on(store, sample_index) as runtime:
        assert table_items(runtime, "HistoryTable") == [turn]
        assert table_items(runtime, "CacheTable") == []  # not imported again
