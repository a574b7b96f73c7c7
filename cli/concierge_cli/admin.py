"""`concierge history delete`, `concierge user delete` and `concierge cache flush`: the
tables, outside a chat request (and `concierge feedback report`, in concierge_cli.feedback).

Without table names they work on the local run's tables (.concierge/tables.sqlite3, as
`concierge serve` and `concierge ask` keep them; a running `concierge serve` sees the change at
once). With `--history-table`/`--cache-table`/`--budget-table`/`--feedback-table` (or
CONCIERGE_HISTORY_TABLE, CONCIERGE_CACHE_TABLE, CONCIERGE_BUDGET_TABLE,
CONCIERGE_FEEDBACK_TABLE: the stack outputs HistoryTableName, CacheTableName, BudgetTableName,
FeedbackTableName) they work on those DynamoDB tables through the standard AWS configuration;
docs/operations.md lists the IAM policy an operator needs for them.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concierge.adapters.dynamodb.sessions import SessionStore

from concierge_cli import feedback
from concierge_cli.support import WORK_DIR, UsageError, default_store, require_repository


def add_commands(commands: Any) -> None:
    """Register `history`, `user`, `cache` and `feedback` on the CLI's subparsers."""
    history = commands.add_parser("history", help="chat history: delete a session")
    history_commands = history.add_subparsers(dest="history_command", required=True)
    delete = history_commands.add_parser(
        "delete",
        help="delete a user's session: its turns, the cache entries it produced, its ratings",
    )
    delete.add_argument("--session", required=True, help="the session id")
    delete.add_argument(
        "--user", default=None, help="whose session: a `sub` (default: the local user, local)"
    )
    _table_options(delete)
    delete.set_defaults(run=delete_history)

    user = commands.add_parser("user", help="users: erase everything stored for one")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    erase = user_commands.add_parser(
        "delete",
        help="erase a user: history, the cache entries they produced, budgets, ratings",
    )
    erase.add_argument("--user", required=True, help="the user's `sub`")
    _table_options(erase)
    erase.set_defaults(run=delete_user)

    cache = commands.add_parser("cache", help="answer cache: flush entries")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    flush = cache_commands.add_parser("flush", help="delete cached answers")
    which = flush.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every entry")
    which.add_argument("--kb-version", help="only entries stored against this version")
    _table_options(flush)
    flush.set_defaults(run=flush_cache)

    feedback.add_commands(commands)


def delete_history(root: Path, args: argparse.Namespace) -> int:
    """`concierge history delete --session ID`: prints what was deleted, as JSON."""
    # Here, not at the top: `concierge ask` loads this module and must start without pydantic.
    from concierge.models.http import SESSION_ID_PATTERN
    from concierge.models.identity import LOCAL_USER

    if not re.fullmatch(SESSION_ID_PATTERN, args.session):
        raise UsageError(f"--session must match {SESSION_ID_PATTERN}")
    user = args.user or LOCAL_USER
    _check_user(user)
    with _store(args, root) as store:
        deletion = store.delete_session(user, args.session)
    print(json.dumps(deletion.model_dump()))
    return 0


def delete_user(root: Path, args: argparse.Namespace) -> int:
    """`concierge user delete --user SUB`: prints what was erased, as JSON."""
    _check_user(args.user)
    with _store(args, root) as store:
        erased = store.delete_user(args.user)
    print(json.dumps(erased.model_dump()))
    return 0


def _check_user(user: str) -> None:
    from concierge.models.http import USER_ID_PATTERN

    if not re.fullmatch(USER_ID_PATTERN, user):
        raise UsageError(f"--user must match {USER_ID_PATTERN}")


def flush_cache(root: Path, args: argparse.Namespace) -> int:
    """`concierge cache flush --all | --kb-version V`: prints how many entries went, as JSON."""
    with _store(args, root) as store:
        flushed = store.flush_cache(kb_version=args.kb_version)
    print(json.dumps(flushed.model_dump()))
    return 0


def _table_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        help="the local run's tables, a SQLite file (default: .concierge/tables.sqlite3)",
    )
    parser.add_argument(
        "--history-table",
        help="DynamoDB table (default: $CONCIERGE_HISTORY_TABLE, else the local run's)",
    )
    parser.add_argument(
        "--cache-table",
        help="DynamoDB table (default: $CONCIERGE_CACHE_TABLE, else the local run's)",
    )
    parser.add_argument(
        "--budget-table",
        help="DynamoDB table of user budgets (default: $CONCIERGE_BUDGET_TABLE, else the "
        "local run's; only `user delete` uses it)",
    )
    parser.add_argument(
        "--feedback-table",
        help="DynamoDB table of users' ratings (default: $CONCIERGE_FEEDBACK_TABLE, else the "
        "local run's; `history delete` and `user delete` use it)",
    )


@contextmanager
def _store(args: argparse.Namespace, root: Path) -> Iterator[SessionStore]:
    """The stack's tables when named (options, else CONCIERGE_HISTORY_TABLE and
    CONCIERGE_CACHE_TABLE, with the budget and feedback tables when named), else the local
    run's."""
    from concierge import wiring
    from concierge.config import TableSettings

    configured = wiring.settings(TableSettings)
    history = args.history_table or configured.history_table
    cache = args.cache_table or configured.cache_table
    budget = args.budget_table or configured.budget_table
    ratings = args.feedback_table or configured.feedback_table
    if history or cache:
        if not (history and cache):
            raise UsageError("give both --history-table and --cache-table, or neither")
        yield wiring.session_store(history, cache, budget, ratings)
        return
    with _local_tables(root, args.state or default_store(root)) as tables:
        yield wiring.session_store(*tables)


@contextmanager
def _local_tables(root: Path, store: Path) -> Iterator[tuple[str, str, str, str]]:
    """The local run's tables (history, cache, budget, feedback), read and written in place in
    its store."""
    from concierge_cli.local.runtime import LEGACY_STATE, LocalRuntime

    require_repository(root)
    # An earlier version's state.json is moved into the store when the runtime starts.
    if not store.is_file() and not store.with_name(LEGACY_STATE).is_file():
        raise UsageError(f"no local tables at {store}: nothing has been asked locally yet")
    with LocalRuntime(root, root / WORK_DIR / "index.json", state_path=store) as runtime:
        yield (
            runtime.table_names["HistoryTable"],
            runtime.table_names["CacheTable"],
            runtime.table_names["BudgetTable"],
            runtime.table_names["FeedbackTable"],
        )
