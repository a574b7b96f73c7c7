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
    # Given the record of a server
    mine = record(tmp_path)

    # When it is written
    mine.write()

    # Then it is read back as it was, from server.json next to the tables
    assert ServerRecord.read(mine.store) == mine
    assert ServerRecord.path_for(mine.store) == tmp_path / "server.json"

    # Given a second server on the same tables, which took over the record
    successor = record(tmp_path, pid=mine.pid + 1, url="http://127.0.0.1:2")
    successor.write()

    # When the first server removes its record
    mine.remove()

    # Then it leaves the second's alone
    assert ServerRecord.read(mine.store) == successor

    # When the second server removes its record
    successor.remove()

    # Then there is no record left, nor any file
    assert ServerRecord.read(mine.store) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ["", "{", "[]", '{"url": "x"}', '{"pid": "x"}'])
def test_an_unreadable_record_is_no_record(tmp_path: Path, content: str) -> None:
    # Given a server.json that is not a record
    (tmp_path / "server.json").write_text(content, encoding="utf-8")

    # When the record of the tables is read
    read = ServerRecord.read(tmp_path / "tables.sqlite3")

    # Then there is none
    assert read is None


def test_a_finished_process_is_not_alive(tmp_path: Path) -> None:
    # Given a child process that has finished
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    # When a record with its pid, and one with this process's pid, are checked
    finished_alive = record(tmp_path, pid=child.pid).process_alive()
    running_alive = record(tmp_path).process_alive()

    # Then the finished process is not alive, and this one is
    assert finished_alive is False
    assert running_alive is True


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
    # Given a record of a server for other tables, another index or a process that is gone
    record(tmp_path, **stale).write()

    # When a question is asked (any connection attempt would fail the test)
    with mock.patch.object(cli, "_ask_in_process", return_value=(200, ANSWER)) as in_process:
        code = ask(tmp_path)

    # Then it is answered in-process, once, and the answer printed
    assert code == 0
    in_process.assert_called_once()
    assert capsys.readouterr().out == ("Gear.\n-- products/en, 2 model calls, session s1\n")


def test_in_process_ignores_the_record(tmp_path: Path) -> None:
    # Given a record of a server that fits these tables and index
    record(tmp_path).write()

    # When a question is asked --in-process (any connection attempt would fail the test)
    with mock.patch.object(cli, "_ask_in_process", return_value=(200, ANSWER)) as in_process:
        code = ask(tmp_path, "--in-process")

    # Then it is answered in-process, once
    assert code == 0
    in_process.assert_called_once()


def test_an_error_reply_exits_1_with_the_message_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a chain that answers with a 400 error
    error = {"error": {"code": "bad_request", "message": "no.", "request_id": "r"}}

    # When a question is asked
    with mock.patch.object(cli, "_ask_in_process", return_value=(400, error)):
        code = ask(tmp_path, "--in-process")

    # Then it exits 1, with the status and message on stderr
    assert code == 1
    assert capsys.readouterr().err == "error 400: no.\n"

    # When a question is asked with --json
    with mock.patch.object(cli, "_ask_in_process", return_value=(400, error)):
        json_code = ask(tmp_path, "--in-process", "--json")

    # Then it exits 1 too, with the error body as JSON on stdout
    assert json_code == 1
    assert json.loads(capsys.readouterr().out) == error


def test_url_and_in_process_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When / Then asking with both --in-process and --url is refused by the parser
    with pytest.raises(SystemExit) as exited:
        ask(tmp_path, "--in-process", "--url", "http://127.0.0.1:3000")

    # And it is a usage error that says the two do not go together
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_url_that_is_not_http_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a question is asked with an ftp URL
    code = ask(tmp_path, "--url", "ftp://127.0.0.1")

    # Then it is a usage error, saying what --url must be
    assert code == 2
    assert "--url must be" in capsys.readouterr().err


def test_the_command_line_starts_without_the_emulator_or_pydantic() -> None:
    """`concierge ask` through a server must start fast: only the in-process path loads them."""
    # Given a script that imports the command line and reports the heavy modules loaded
    report = (
        "import sys, concierge_cli.main\n"
        "print(*[m for m in ('boto3', 'botocore', 'moto', 'pydantic', 'yaml') if m in sys.modules])"
    )

    # When it runs in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", report], capture_output=True, text=True, check=True, timeout=60
    )

    # Then none of them was loaded
    assert done.stdout.strip() == ""
