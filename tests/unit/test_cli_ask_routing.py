"""`concierge ask`'s choice between a running server and the in-process chain, and the record a
server leaves for it. No network here: a connection attempt fails the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from concierge_cli import main as cli
from concierge_cli.support import ServerRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSWER = {
    "answer": "Gear.",
    "citations": [],
    "category": "products",
    "language": "en",
    "cached": False,
    "session_id": "s1",
    "request_id": "r",
    "usage": {"llm_calls": 2},
}


def record(tmp_path: Path, **fields: Any) -> ServerRecord:
    values: dict[str, Any] = {
        "url": "http://127.0.0.1:1",
        "pid": os.getpid(),
        "store": tmp_path / "tables.sqlite3",
        "index": tmp_path / "index.json",
        **fields,
    }
    return ServerRecord(**values)


def test_a_record_is_read_back_and_removed_only_by_its_server(tmp_path: Path) -> None:
    mine = record(tmp_path)
    mine.write()
    assert ServerRecord.read(mine.store) == mine
    assert ServerRecord.path_for(mine.store) == tmp_path / "server.json"

    # A second server on the same tables took over the record: the first leaves it alone.
    successor = record(tmp_path, pid=mine.pid + 1, url="http://127.0.0.1:2")
    successor.write()
    mine.remove()
    assert ServerRecord.read(mine.store) == successor
    successor.remove()
    assert ServerRecord.read(mine.store) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["", "{", "[]", '{"url": "x"}', '{"pid": "x"}'])
def test_an_unreadable_record_is_no_record(tmp_path: Path, content: str) -> None:
    (tmp_path / "server.json").write_text(content, encoding="utf-8")
    assert ServerRecord.read(tmp_path / "tables.sqlite3") is None


def test_a_finished_process_is_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert record(tmp_path, pid=child.pid).process_alive() is False
    assert record(tmp_path).process_alive() is True


def ask(tmp_path: Path, *argv: str) -> int:
    return cli.main(
        [
            "--root",
            str(REPO_ROOT),
            "ask",
            "What do you sell?",
            "--state",
            str(tmp_path / "tables.sqlite3"),
            "--index",
            str(tmp_path / "index.json"),
            *argv,
        ]
    )


@pytest.mark.parametrize(
    "stale",
    [
        {"store": Path("/elsewhere/tables.sqlite3")},  # serves other tables
        {"index": Path("/elsewhere/index.json")},  # serves another knowledge base
        {"pid": -1},  # no such process
    ],
)
def test_a_record_that_does_not_fit_is_not_even_contacted(
    tmp_path: Path, stale: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    record(tmp_path, **stale).write()
    with mock.patch.object(cli, "_ask_in_process", return_value=(200, ANSWER)) as in_process:
        assert ask(tmp_path) == 0
    in_process.assert_called_once()
    assert capsys.readouterr().out == ("Gear.\n-- products/en, 2 model calls, session s1\n")


def test_in_process_ignores_the_record(tmp_path: Path) -> None:
    record(tmp_path).write()
    with mock.patch.object(cli, "_ask_in_process", return_value=(200, ANSWER)) as in_process:
        assert ask(tmp_path, "--in-process") == 0
    in_process.assert_called_once()


def test_an_error_reply_exits_1_with_the_message_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = {"error": {"code": "bad_request", "message": "no.", "request_id": "r"}}
    with mock.patch.object(cli, "_ask_in_process", return_value=(400, error)):
        assert ask(tmp_path, "--in-process") == 1
    assert capsys.readouterr().err == "error 400: no.\n"
    with mock.patch.object(cli, "_ask_in_process", return_value=(400, error)):
        assert ask(tmp_path, "--in-process", "--json") == 1
    assert json.loads(capsys.readouterr().out) == error


def test_url_and_in_process_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        ask(tmp_path, "--in-process", "--url", "http://127.0.0.1:3000")


def test_a_url_that_is_not_http_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ask(tmp_path, "--url", "ftp://127.0.0.1") == 2
    assert "--url must be" in capsys.readouterr().err


def test_the_command_line_starts_without_the_emulator_or_pydantic() -> None:
    """`concierge ask` through a server must start fast: only the in-process path loads them."""
    report = (
        "import sys, concierge_cli.main\n"
        "print(*[m for m in ('boto3', 'botocore', 'moto', 'pydantic', 'yaml') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", report], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
