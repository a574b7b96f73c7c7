"""`concierge history delete` and `concierge cache flush`: the tables, outside a chat request.

Without table names they work on the local run's tables (.concierge/state.json, as `concierge
serve` and `concierge ask` keep them). With `--history-table`/`--cache-table` (or
CONCIERGE_HISTORY_TABLE / CONCIERGE_CACHE_TABLE, e.g. the stack outputs HistoryTableName and
CacheTableName) they work on those DynamoDB tables through the standard AWS configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from concierge.models.http import SESSION_ID_PATTERN
from concierge_cli.support import WORK_DIR, UsageError, require_repository


def add_commands(commands: Any) -> None:
    """Register `history` and `cache` on the CLI's subparsers."""
    history = commands.add_parser("history", help="chat history: delete a session")
    history_commands = history.add_subparsers(dest="history_command", required=True)
    delete = history_commands.add_parser(
        "delete", help="delete a session's turns and the cache entries it produced"
    )
    delete.add_argument("--session", required=True, help="the session id")
    _table_options(delete)
    delete.set_defaults(run=delete_history)

    cache = commands.add_parser("cache", help="answer cache: flush entries")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    flush = cache_commands.add_parser("flush", help="delete cached answers")
    which = flush.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every entry")
    which.add_argument("--kb-version", help="only entries stored against this version")
    _table_options(flush)
    flush.set_defaults(run=flush_cache)


def delete_history(root: Path, args: argparse.Namespace) -> int:
    """`concierge history delete --session ID`: prints what was deleted, as JSON."""
    if not re.fullmatch(SESSION_ID_PATTERN, args.session):
        raise UsageError(f"--session must match {SESSION_ID_PATTERN}")
    from concierge.stores import delete_session

    with _tables(args, root) as (dynamodb, history_table, cache_table):
        deletion = delete_session(dynamodb, history_table, cache_table, args.session)
    print(json.dumps(deletion.model_dump()))
    return 0


def flush_cache(root: Path, args: argparse.Namespace) -> int:
    """`concierge cache flush --all | --kb-version V`: prints how many entries went, as JSON."""
    from concierge import stores

    with _tables(args, root) as (dynamodb, _, cache_table):
        flushed = stores.flush_cache(dynamodb, cache_table, kb_version=args.kb_version)
    print(json.dumps(flushed.model_dump()))
    return 0


def _table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state", type=Path, help="the local run's tables (default: .concierge/state.json)"
    )
    parser.add_argument(
        "--history-table",
        default=os.environ.get("CONCIERGE_HISTORY_TABLE"),
        help="DynamoDB table (default: $CONCIERGE_HISTORY_TABLE, else the local run's)",
    )
    parser.add_argument(
        "--cache-table",
        default=os.environ.get("CONCIERGE_CACHE_TABLE"),
        help="DynamoDB table (default: $CONCIERGE_CACHE_TABLE, else the local run's)",
    )


@contextmanager
def _tables(args: argparse.Namespace, root: Path) -> Iterator[tuple[Any, str, str]]:
    if args.history_table or args.cache_table:
        if not (args.history_table and args.cache_table):
            raise UsageError("give both --history-table and --cache-table, or neither")
        from concierge.adapters.aws import aws_client

        yield aws_client("dynamodb"), args.history_table, args.cache_table
        return
    with _local_tables(root, args.state or root / WORK_DIR / "state.json") as tables:
        yield tables


@contextmanager
def _local_tables(root: Path, state: Path) -> Iterator[tuple[Any, str, str]]:
    """The local run's tables, loaded from and saved back to its state file."""
    import boto3

    from concierge_cli.local.runtime import REGION, LocalRuntime

    require_repository(root)
    if not state.is_file():
        raise UsageError(f"no local state at {state}: nothing has been asked locally yet")
    with LocalRuntime(root, root / WORK_DIR / "index.json", state_path=state) as runtime:
        yield (
            boto3.client("dynamodb", region_name=REGION),
            runtime.table_names["HistoryTable"],
            runtime.table_names["CacheTable"],
        )
        runtime.save_state()
