"""The local run's table store: moto tables whose items live in a SQLite file, item by item."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from concierge_cli.local import tables
from concierge_cli.local.tables import StoredTable, TableStore

HISTORY_KEYS = {
    "schema": [
        {"AttributeName": "session_id", "KeyType": "HASH"},
        {"AttributeName": "turn_key", "KeyType": "RANGE"},
    ],
    "attr": [
        {"AttributeName": "session_id", "AttributeType": "S"},
        {"AttributeName": "turn_key", "AttributeType": "S"},
    ],
}
CACHE_KEYS = {
    "schema": [{"AttributeName": "cache_key", "KeyType": "HASH"}],
    "attr": [{"AttributeName": "cache_key", "AttributeType": "S"}],
}


def stored(store: TableStore, name: str, keys: dict[str, Any]) -> StoredTable:
    return store.keep(Table(name, "123456789012", "us-east-1", keys["schema"], keys["attr"]))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TableStore]:
    opened = TableStore(tmp_path / "tables.sqlite3")
    yield opened
    opened.close()


def turn(session: str, number: int) -> dict[str, Any]:
    return {
        "session_id": {"S": session},
        "turn_key": {"S": f"{number:013d}#r{number}"},
        "question": {"S": f"question {number}"},
    }


def query(table: StoredTable, session: str, newest_first: bool = False, limit: int = 100) -> Any:
    """moto's Table.query by hash key, as its backend calls it: (items, scanned, last key)."""
    return table.query(DynamoType({"S": session}), None, [], limit, None, not newest_first, None)


def test_every_attribute_type_comes_back_as_it_was_written(store: TableStore) -> None:
    # Given an item with an attribute of every DynamoDB type, written to a stored table
    table = stored(store, "cache", CACHE_KEYS)
    attributes = {
        "cache_key": {"S": "q#1"},
        "text": {"S": "Grüße"},
        "count": {"N": "12.50"},
        "blob": {"B": "AAEC/w=="},
        "tags": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2"]},
        "blobs": {"BS": ["AA==", "AQ=="]},
        "entries": {"M": {"q#2": {"B": "f4CB"}, "nested": {"L": [{"N": "1"}, {"NULL": True}]}}},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
    }
    written = table.put_item(attributes)

    # When it is read back by its key
    read = table.get_item(DynamoType({"S": "q#1"}))

    # Then it comes from the file, not from memory, and equals what was written
    assert read is not None
    assert read is not written  # from the file, not from memory
    assert read == written


def test_a_query_reads_only_its_partition(store: TableStore) -> None:
    # Given 300 sessions of 3 turns each
    table = stored(store, "history", HISTORY_KEYS)
    for session in range(300):
        for number in range(3):
            table.put_item(turn(f"s{session}", number))

    # When one session's two newest turns are queried, counting the items decoded
    with mock.patch.object(tables, "_item", wraps=tables._item) as decoded:
        items, _, _ = query(table, "s42", newest_first=True, limit=2)

    # Then they come newest first
    assert [item.attrs["turn_key"].value for item in items] == [
        "0000000000002#r2",
        "0000000000001#r1",
    ]
    # And only the session's turns were decoded, none of the other 897
    assert decoded.call_count == 3


def test_an_index_free_scan_still_reads_every_item(store: TableStore) -> None:
    # Given two turns of each of two sessions, written out of order
    table = stored(store, "history", HISTORY_KEYS)
    for session in ("b", "a"):
        for number in range(2):
            table.put_item(turn(session, number))

    # When the table is scanned
    items, scanned, _ = table.scan({}, 100, None)

    # Then every item is read, in key order
    assert scanned == 4
    assert [(i.hash_key.value, i.attrs["question"].value) for i in items] == [
        ("a", "question 0"),
        ("a", "question 1"),
        ("b", "question 0"),
        ("b", "question 1"),
    ]
    # And the table counts them all
    assert len(table) == 4


def test_two_stores_on_one_file_see_each_others_writes_at_once(
    store: TableStore, tmp_path: Path
) -> None:
    # Given a second store on the same file, and the same table in each
    other = TableStore(tmp_path / "tables.sqlite3")
    try:
        mine = stored(store, "history", HISTORY_KEYS)
        theirs = stored(other, "history", HISTORY_KEYS)

        # When a turn is written through one
        mine.put_item(turn("alice", 1))

        # Then the other finds it at once
        assert [i.range_key for i in query(theirs, "alice")[0]] == [
            DynamoType({"S": "0000000000001#r1"})
        ]

        # When the other deletes it
        theirs.delete_item(DynamoType({"S": "alice"}), DynamoType({"S": "0000000000001#r1"}))

        # Then the first no longer finds it
        assert query(mine, "alice")[0] == []
    finally:
        other.close()


def test_hash_only_tables_put_get_and_delete_by_key(store: TableStore) -> None:
    # Given a table keyed by hash only, and an item put twice under one key
    table = stored(store, "cache", CACHE_KEYS)
    key = DynamoType({"S": "q#1"})
    table.put_item({"cache_key": {"S": "q#1"}, "hits": {"N": "1"}})
    table.put_item({"cache_key": {"S": "q#1"}, "hits": {"N": "2"}})

    # When it is read by its key
    item = table.get_item(key)

    # Then the second put replaced the first
    assert item is not None
    assert item.attrs["hits"].value == "2"
    assert len(table) == 1

    # When it is deleted
    deleted = table.delete_item(key, None)

    # Then the item was there to delete, and is gone
    assert deleted is not None
    assert table.get_item(key) is None
    # And deleting it again finds nothing
    assert table.delete_item(key, None) is None


def test_tables_of_one_store_keep_their_items_apart(store: TableStore) -> None:
    # Given two tables of one store
    one = stored(store, "one", CACHE_KEYS)
    two = stored(store, "two", CACHE_KEYS)

    # When an item is put into the first
    one.put_item({"cache_key": {"S": "k"}, "which": {"S": "one"}})

    # Then the second has no item under its key, nor any at all
    assert two.get_item(DynamoType({"S": "k"})) is None
    assert len(two) == 0
    # And the first has it
    assert len(one) == 1


def test_a_failed_transaction_writes_nothing(store: TableStore) -> None:
    # Given a table of the store
    table = stored(store, "cache", CACHE_KEYS)

    # When a transaction, with one nested in it, puts two items then fails before it commits
    with pytest.raises(RuntimeError, match="before commit"), store.transaction():
        table.put_item({"cache_key": {"S": "q#1"}})
        with store.transaction():  # nested: part of the outer one
            table.put_item({"cache_key": {"S": "q#2"}})
        raise RuntimeError("before commit")

    # Then neither item was written
    assert len(table) == 0


def test_numbers_that_are_equal_are_one_key(store: TableStore) -> None:
    # Given a table keyed by a number, and items put under 1.0 and then 1
    keys = {
        "schema": [{"AttributeName": "n", "KeyType": "HASH"}],
        "attr": [{"AttributeName": "n", "AttributeType": "N"}],
    }
    table = stored(store, "numbers", keys)
    table.put_item({"n": {"N": "1.0"}, "v": {"S": "first"}})
    table.put_item({"n": {"N": "1"}, "v": {"S": "second"}})

    # When the item under 1.00 is read
    item = table.get_item(DynamoType({"N": "1.00"}))

    # Then it is the second, which replaced the first: there is one item
    assert item is not None
    assert item.attrs["v"].value == "second"
    assert len(table) == 1
