"""The local run's DynamoDB tables, kept item by item in one SQLite file.

moto keeps a table's items in a dict in memory. `TableStore.keep` turns a moto table into a
`StoredTable`, whose items live in the store instead: nothing is loaded at start and a request
writes only the items it changes, so start-up and per-request costs do not grow with the
number of stored items. A query by hash key reads that key's partition only (moto's own
`Table.query` reads and sorts every item of the table); a scan reads everything, which only
the admin commands do.

Nothing is cached in memory: every read goes to the file, so a running server and a
`concierge history delete` in another process see each other's writes. Each change to an item
(PutItem, UpdateItem, DeleteItem, one item of a BatchWriteItem) is one SQLite transaction
that includes its condition check; WAL mode lets readers go on while one process writes.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from unittest import mock

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    table_name TEXT NOT NULL,
    hash_key TEXT NOT NULL,
    range_key TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (table_name, hash_key, range_key)
) WITHOUT ROWID
"""
# The key attributes each table's items were stored under: a template that changes a table's key
# (history moved from per-session to per-user keys) makes the old items unreadable.
_KEYS = """
CREATE TABLE IF NOT EXISTS table_keys (
    table_name TEXT PRIMARY KEY,
    key_schema TEXT NOT NULL
) WITHOUT ROWID
"""
# Key attributes are never empty in DynamoDB, so no range key of a real item can be this.
_NO_RANGE = ""
# Another process holds the write lock for milliseconds; waiting this long means it is stuck.
_BUSY_TIMEOUT_S = 10.0


class TableStore:
    """One SQLite file holding the items of the tables it keeps, by table name.

    Safe to share between threads (one connection, one lock) and between processes (SQLite's
    own locking). Close it when done."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._transaction_depth = 0
        # Transactions are explicit (isolation_level=None): each statement outside one commits.
        self._db = sqlite3.connect(
            path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL survives a crash of the process; a power cut may lose the last turns.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._db.execute(_KEYS)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def keep(self, table: Table) -> StoredTable:
        """Make moto's `table` (just created, still empty) keep its items in this store; the
        items already stored under its name are its items from now on."""
        stored = cast(StoredTable, table)
        stored.__class__ = StoredTable  # type: ignore[type-abstract] # moto declares CloudFormation hooks abstract
        stored.store = self
        stored.items = _Items(stored)  # type: ignore[assignment] # moto types it as its dict
        self._check_keys(table.name, json.dumps([table.hash_key_attr, table.range_key_attr]))
        return stored

    def _check_keys(self, table_name: str, key_schema: str) -> None:
        """Items stored under another key schema cannot be read under this one: drop them."""
        with self.transaction():
            rows = self._select(
                "SELECT key_schema FROM table_keys WHERE table_name = ?", (table_name,)
            )
            if rows and rows[0][0] != key_schema:
                self._db.execute("DELETE FROM items WHERE table_name = ?", (table_name,))
                logging.getLogger(__name__).warning(
                    "%s: the template changed this table's key (%s, now %s); its old items "
                    "were dropped",
                    table_name,
                    rows[0][0],
                    key_schema,
                )
            self._db.execute(
                "INSERT OR REPLACE INTO table_keys (table_name, key_schema) VALUES (?, ?)",
                (table_name, key_schema),
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all; other writers (threads or
        processes) wait. Nested transactions join the outer one."""
        with self._lock:
            if self._transaction_depth == 0:
                # IMMEDIATE takes the write lock now, so a condition checked inside still holds
                # when the write lands.
                self._db.execute("BEGIN IMMEDIATE")
            self._transaction_depth += 1
            try:
                yield
            except BaseException:
                self._transaction_depth -= 1
                if self._transaction_depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._transaction_depth -= 1
            if self._transaction_depth == 0:
                self._db.execute("COMMIT")

    # -- rows ------------------------------------------------------------------------------
    def get(
        self, table: StoredTable, hash_key: DynamoType, range_key: DynamoType | None
    ) -> Item | None:
        rows = self._select(
            "SELECT item FROM items WHERE table_name = ? AND hash_key = ? AND range_key = ?",
            (table.name, _key_text(hash_key), _range_text(range_key)),
        )
        return _item(table, rows[0][0]) if rows else None

    def put(self, table: StoredTable, item: Item) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO items (table_name, hash_key, range_key, item) "
                "VALUES (?, ?, ?, ?)",
                (
                    table.name,
                    _key_text(item.hash_key),
                    _range_text(item.range_key),
                    json.dumps({name: _plain(value) for name, value in item.attrs.items()}),
                ),
            )

    def delete(self, table: StoredTable, hash_key: DynamoType, range_key: DynamoType | None) -> int:
        """How many items went; without `range_key` on a table that has range keys, the whole
        partition goes."""
        if range_key is None and table.has_range_key:
            sql = "DELETE FROM items WHERE table_name = ? AND hash_key = ?"
            parameters: tuple[str, ...] = (table.name, _key_text(hash_key))
        else:
            sql = "DELETE FROM items WHERE table_name = ? AND hash_key = ? AND range_key = ?"
            parameters = (table.name, _key_text(hash_key), _range_text(range_key))
        with self._lock:
            return self._db.execute(sql, parameters).rowcount

    def partition(self, table: StoredTable, hash_key: DynamoType) -> list[Item]:
        rows = self._select(
            "SELECT item FROM items WHERE table_name = ? AND hash_key = ?",
            (table.name, _key_text(hash_key)),
        )
        return [_item(table, text) for (text,) in rows]

    def has_partition(self, table: StoredTable, hash_key: DynamoType) -> bool:
        return bool(
            self._select(
                "SELECT 1 FROM items WHERE table_name = ? AND hash_key = ? LIMIT 1",
                (table.name, _key_text(hash_key)),
            )
        )

    def every_item(self, table: StoredTable) -> list[Item]:
        rows = self._select("SELECT item FROM items WHERE table_name = ?", (table.name,))
        return [_item(table, text) for (text,) in rows]

    def hash_keys(self, table: StoredTable) -> list[DynamoType]:
        rows = self._select(
            "SELECT DISTINCT hash_key FROM items WHERE table_name = ?", (table.name,)
        )
        return [DynamoType({table.hash_key_type: text}) for (text,) in rows]

    def count(self, table: StoredTable) -> int:
        rows = self._select("SELECT count(*) FROM items WHERE table_name = ?", (table.name,))
        return int(rows[0][0])

    def _select(self, sql: str, parameters: tuple[str, ...]) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()


class StoredTable(Table):
    """A moto table whose items are in a `TableStore` (see `TableStore.keep`)."""

    store: TableStore

    def __len__(self) -> int:
        return self.store.count(self)

    def all_items(self) -> list[Item]:
        # moto's own order: a scan pages through the items in it.
        return sorted(
            self.store.every_item(self),
            key=lambda item: (item.hash_key, item.range_key) if item.range_key else item.hash_key,
        )

    def query(  # noqa: PLR0917 - the signature of the moto method it overrides
        self,
        hash_key: DynamoType | None,
        range_comparison: str | None,
        range_objs: list[DynamoType],
        limit: int,
        exclusive_start_key: dict[str, Any],
        scan_index_forward: bool,
        projection_expressions: list[list[str]] | None,
        index_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[list[Item], int, dict[str, Any] | None]:
        # Only the table's own key names a partition; an index query needs every item.
        table = self if index_name or hash_key is None else _OnePartition(self, hash_key)
        return Table.query(
            cast(Table, table),
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            *args,
            **kwargs,
        )


class _OnePartition:
    """The table as one query by hash key sees it: moto's query looks through `all_items` for
    the key's items, so this view's `all_items` holds only those. Everything else is the
    table's. (Not a Table: moto remembers every Table ever made, and this is one per query.)"""

    def __init__(self, table: StoredTable, hash_key: DynamoType) -> None:
        self._table = table
        self._hash_key = hash_key

    def all_items(self) -> list[Item]:
        return self._table.store.partition(self._table, self._hash_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


class _Items(MutableMapping[DynamoType, Any]):
    """`Table.items` of a StoredTable, as moto's put_item, get_item and delete_item use it:
    hash key → item on a hash-only table, hash key → partition (range key → item) otherwise.
    Every access reads or writes the store."""

    def __init__(self, table: StoredTable) -> None:
        self._table = table

    def __getitem__(self, hash_key: DynamoType) -> Any:
        if self._table.has_range_key:
            # moto's items is a defaultdict: a missing partition reads as an empty one.
            return _Partition(self._table, hash_key)
        item = self._table.store.get(self._table, hash_key, None)
        if item is None:
            raise KeyError(hash_key)
        return item

    def __setitem__(self, hash_key: DynamoType, item: Any) -> None:
        if self._table.has_range_key:
            raise TypeError("a partition is written item by item")
        self._table.store.put(self._table, item)

    def __delitem__(self, hash_key: DynamoType) -> None:
        if not self._table.store.delete(self._table, hash_key, None):
            raise KeyError(hash_key)

    def __contains__(self, hash_key: object) -> bool:
        return isinstance(hash_key, DynamoType) and self._table.store.has_partition(
            self._table, hash_key
        )

    def __iter__(self) -> Iterator[DynamoType]:
        return iter(self._table.store.hash_keys(self._table))

    def __len__(self) -> int:
        return len(self._table.store.hash_keys(self._table))


class _Partition(MutableMapping[DynamoType, Item]):
    """The items of one hash key of a table with range keys: range key → item."""

    def __init__(self, table: StoredTable, hash_key: DynamoType) -> None:
        self._table = table
        self._hash_key = hash_key

    def __getitem__(self, range_key: DynamoType) -> Item:
        item = self._table.store.get(self._table, self._hash_key, range_key)
        if item is None:
            raise KeyError(range_key)
        return item

    def __setitem__(self, range_key: DynamoType, item: Item) -> None:
        self._table.store.put(self._table, item)

    def __delitem__(self, range_key: DynamoType) -> None:
        if not self._table.store.delete(self._table, self._hash_key, range_key):
            raise KeyError(range_key)

    def __iter__(self) -> Iterator[DynamoType]:
        items = self._table.store.partition(self._table, self._hash_key)
        return iter([item.range_key for item in items if item.range_key is not None])

    def __len__(self) -> int:
        return len(self._table.store.partition(self._table, self._hash_key))


def backend_patches() -> list[Any]:
    """Patches of moto's DynamoDB backend, to start with the mock: each PutItem, UpdateItem and
    DeleteItem on a StoredTable becomes one transaction with its condition check, and
    UpdateItem's result is written back (moto changes the item it read in place, which for a
    StoredTable is a copy)."""
    return [
        mock.patch.object(
            DynamoDBBackend,
            name,
            _one_transaction(getattr(DynamoDBBackend, name), write_back=name == "update_item"),
        )
        for name in ("put_item", "update_item", "delete_item")
    ]


def _one_transaction(method: Callable[..., Any], write_back: bool) -> Callable[..., Any]:
    def change(backend: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Any:
        table = backend.get_table(table_name)
        if not isinstance(table, StoredTable):
            return method(backend, table_name, *args, **kwargs)
        with table.store.transaction():
            result = method(backend, table_name, *args, **kwargs)
            if write_back:
                table.store.put(table, result)
        return result

    return change


# -- items as rows -------------------------------------------------------------------------
def _key_text(key: DynamoType) -> str:
    """A key value as stored: equal keys (1 and 1.0 are the same number) give equal text."""
    if key.type == "N":
        return str(Decimal(key.value).normalize())
    return _text(key.value)


def _range_text(key: DynamoType | None) -> str:
    return _NO_RANGE if key is None else _key_text(key)


def _text(value: str | bytes) -> str:
    # moto holds binary values as base64 text, as they arrive in requests, or as bytes.
    return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value


def _plain(value: DynamoType) -> dict[str, Any]:
    """An attribute value as DynamoDB JSON, binary as base64 (moto's Item.to_json decodes
    binary values inside maps and lists to bytes, which JSON cannot hold)."""
    inner: Any
    if value.is_map():
        inner = {name: _plain(member) for name, member in value.value.items()}
    elif value.is_list():
        inner = [_plain(member) for member in value.value]
    elif value.type == "B":
        inner = _text(value.value)
    elif value.type == "BS":
        inner = [_text(member) for member in value.value]
    else:
        inner = value.value
    return {value.type: inner}


def _item(table: Table, text: str) -> Item:
    attrs: dict[str, Any] = json.loads(text)
    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    # moto's models remember every instance made until the mock is reset; an item is rebuilt
    # on every read here, so remembering them would grow a long-running server's memory.
    item: Item = object.__new__(Item)
    item.__init__(hash_key, range_key, attrs)  # type: ignore[misc]
    return item
