"""`concierge history delete` and `concierge cache flush` on a local run's stored tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_api import answer, table_items

from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def concierge(*argv: str) -> int:
    return main(["--root", str(REPO_ROOT), *argv])


@pytest.fixture
def saved_state(tmp_path: Path, sample_index: tuple[Path, IndexFile]) -> Path:
    """A local run's store: two sessions, each with a cached first answer."""
    store = tmp_path / "tables.sqlite3"
    index_path, index = sample_index
    with LocalRuntime(REPO_ROOT, index_path, index.kb_version, state_path=store) as runtime:
        answer(runtime, "What do you sell?", "alice")
        answer(runtime, "How long is the warranty on backpacks?", "bob")
    return store


def tables(store: Path) -> dict[str, list[dict[str, dict[str, str]]]]:
    """Every item of each table, as the next local run finds them."""
    with LocalRuntime(REPO_ROOT, store.with_name("index.json"), state_path=store) as runtime:
        return {logical_id: table_items(runtime, logical_id) for logical_id in runtime.table_names}


def test_history_delete_forgets_the_session_in_the_saved_state(
    saved_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a saved local run with Alice's and Bob's sessions (see saved_state)
    # When Alice's session is deleted from the saved state
    code = concierge("history", "delete", "--session", "alice", "--state", str(saved_state))

    # Then the command succeeds and reports her one turn and one cache entry
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "session_id": "alice",
        "turns": 1,
        "cache_entries": 1,
    }
    # And the next local run finds only Bob's turns and cache entries
    saved = tables(saved_state)
    assert {item["session_id"]["S"] for item in saved["HistoryTable"]} == {"bob"}
    assert {item["session_id"]["S"] for item in saved["CacheTable"]} == {"bob"}


def test_cache_flush_by_version_and_all(
    saved_state: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given a saved local run with two cache entries of the sample knowledge base's version
    state = str(saved_state)
    kb_version = sample_index[1].kb_version

    # When the cache is flushed for another version
    other_version_code = concierge("cache", "flush", "--kb-version", "another", "--state", state)

    # Then it succeeds and both entries stay
    assert other_version_code == 0
    assert len(tables(saved_state)["CacheTable"]) == 2

    # When the cache is flushed for the entries' own version
    own_version_code = concierge("cache", "flush", "--kb-version", kb_version, "--state", state)

    # Then it succeeds and the cache is empty
    assert own_version_code == 0
    assert tables(saved_state)["CacheTable"] == []
    # And the history is not the cache's: it stays
    assert len(tables(saved_state)["HistoryTable"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "delete", "--session", "no spaces"], "--session must match"),
        (["cache", "flush", "--all", "--state", "/nonexistent/tables.sqlite3"], "nothing has been"),
        (["cache", "flush", "--all", "--cache-table", "t"], "both --history-table"),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an admin command is run with arguments it cannot use
    code = concierge(*argv)

    # Then it exits with the usage error code, saying what is wrong on stderr
    assert code == 2
    assert message in capsys.readouterr().err


def test_flush_needs_all_or_a_version(capsys: pytest.CaptureFixture[str]) -> None:
    # When / Then flushing the cache without --all or --kb-version is refused by the parser
    with pytest.raises(SystemExit) as exited:
        concierge("cache", "flush")

    # And it is a usage error that names both choices
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "--all" in error
    assert "--kb-version" in error
