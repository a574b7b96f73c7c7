"""`concierge ask` sends its question to a running `concierge serve` when there is one, and
runs the chain in-process otherwise; what it prints and returns is the same either way."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from local_api import table_items

from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.server import LocalApiServer
from concierge_cli.main import main
from concierge_cli.support import ServerRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CHILD_TIMEOUT_S = 120


class Server:
    """A local API server in a thread, and the POST requests its api function served."""

    def __init__(self, runtime: LocalRuntime, url: str, api: mock.MagicMock) -> None:
        self.runtime = runtime
        self.url = url
        self._api = api

    @property
    def posts(self) -> int:
        return sum(
            call.args[0]["requestContext"]["http"]["method"] == "POST"
            for call in self._api.call_args_list
        )


@contextmanager
def serving(
    store: Path, sample_index: tuple[Path, IndexFile], record: bool = True
) -> Iterator[Server]:
    """What `concierge serve --state store --index …` sets up, in this process."""
    index_path, index = sample_index
    with LocalRuntime(REPO_ROOT, index_path, index.kb_version, state_path=store) as runtime:
        server = LocalApiServer(runtime, HOST, 0, access_log=False)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        url = f"http://{HOST}:{server.server_port}"
        served = ServerRecord(url, os.getpid(), store.resolve(), index_path.resolve())
        with mock.patch.object(runtime, "api", wraps=runtime.api) as api:
            thread.start()
            if record:
                served.write()
            try:
                yield Server(runtime, url, api)
            finally:
                served.remove()
                server.shutdown()
                server.server_close()
                thread.join(timeout=10)


def ask(
    capsys: pytest.CaptureFixture[str], store: Path, index_path: Path, *argv: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `concierge ask` on this store and index."""
    code = main(
        [
            "--root",
            str(REPO_ROOT),
            "ask",
            *argv,
            "--state",
            str(store),
            "--index",
            str(index_path),
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def without_request_ids(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if '"request_id"' not in line)


def child_environment() -> dict[str, str]:
    """This process's environment without what a running runtime put there."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CONCIERGE_", "POWERTOOLS_"))
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


MAIN = "import sys; from concierge_cli.main import main; sys.exit(main())"


def run_child(code: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, "--root", str(REPO_ROOT), *argv],
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )


ARGVS = [
    ["What do you sell?", "--session", "s1"],
    ["Which of them is cheapest?", "--session", "s1", "--json"],  # a follow-up, cached or not
    ["Which tent is the lightest?"],  # a new session: its id is printed
    ["What do you sell?", "--session", "not valid"],  # 400: exit code 1
    ["What do you sell?", "--session", "not valid", "--json"],
]


def test_through_a_running_server_the_output_is_the_same_as_in_process(
    tmp_path: Path, sample_index: tuple[Path, IndexFile], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the sample knowledge base, and questions that succeed, follow up or are refused
    index_path, _ = sample_index
    store = tmp_path / "served" / "tables.sqlite3"

    # When they are asked in-process on one store, then through a server running on another
    alone = [ask(capsys, tmp_path / "alone.sqlite3", index_path, *argv) for argv in ARGVS]
    with serving(store, sample_index) as server:
        served = [ask(capsys, store, index_path, *argv) for argv in ARGVS]
        posts = server.posts

    # Then every question asked through the server reached it
    assert posts == len(ARGVS)
    # And in-process, the good questions succeed and the bad ones exit 1
    assert [code for code, _, _ in alone] == [0, 0, 0, 1, 1]
    # And the server's exit codes, errors and output are the in-process ones (but for request
    # ids and the id of a new session)
    for argv, (code, out, err), (served_code, served_out, served_err) in zip(
        ARGVS, alone, served, strict=True
    ):
        assert (served_code, served_err) == (code, err)
        if "--session" in argv:
            assert without_request_ids(served_out) == without_request_ids(out)
        else:
            assert served_out.rsplit("session ", 1)[0] == out.rsplit("session ", 1)[0]


def test_a_record_of_a_server_that_no_longer_answers_falls_back_to_in_process(
    tmp_path: Path, sample_index: tuple[Path, IndexFile], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a record of a server in a live process (this one), but nothing listens at its URL
    store = tmp_path / "tables.sqlite3"
    index_path, _ = sample_index
    url = f"http://{HOST}:{free_port()}"
    ServerRecord(url, os.getpid(), store.resolve(), index_path.resolve()).write()

    # When a question is asked
    code, out, err = ask(capsys, store, index_path, "What do you sell?", "--session", "s1")

    # Then it is answered in-process, without a complaint
    assert (code, err) == (0, "")
    assert "Alpenglow" in out
    assert out.endswith("session s1\n")


def test_url_forces_a_server_and_fails_when_none_answers(
    tmp_path: Path, sample_index: tuple[Path, IndexFile], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a URL nothing listens at
    index_path, _ = sample_index
    url = f"http://{HOST}:{free_port()}"

    # When a question is asked with --url
    code, out, err = ask(capsys, tmp_path / "t.sqlite3", index_path, "Hi?", "--url", url)

    # Then it fails, saying no API answers there, instead of answering in-process
    assert (code, out) == (1, "")
    assert f"no Concierge API answers at {url}" in err

    # Given a server that left no record, on tables other than the asker's --state
    with serving(tmp_path / "tables.sqlite3", sample_index, record=False) as server:
        # When a question is asked with --url naming it
        args = ("What do you sell?", "--session", "s9", "--url", server.url)
        code, out, _ = ask(capsys, tmp_path / "t.sqlite3", index_path, *args)

        # Then the server answered it once, and the turn is written in the server's tables
        assert (code, server.posts) == (0, 1)
        assert [t["session_id"]["S"] for t in table_items(server.runtime, "HistoryTable")] == ["s9"]


def test_asking_a_running_server_loads_neither_the_emulator_nor_pydantic(
    tmp_path: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given a running server, and a command line that reports the heavy modules it loaded
    store = tmp_path / "tables.sqlite3"
    index_path, _ = sample_index
    report_heavy_imports = (
        "import sys\n"
        "from concierge_cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = [m for m in ('boto3', 'botocore', 'moto', 'pydantic') if m in sys.modules]\n"
        "print('heavy:', *heavy, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    argv = ["ask", "What do you sell?", "--state", str(store), "--index", str(index_path)]
    with serving(store, sample_index) as server:
        # When a question is asked in another process
        done = run_child(report_heavy_imports, argv)
        posts = server.posts

    # Then the server answered it
    assert posts == 1
    assert done.returncode == 0, done.stderr
    assert "Alpenglow" in done.stdout
    # And the asking process loaded none of the heavy modules
    assert done.stderr.strip() == "heavy:"


def test_in_process_leaves_a_running_server_alone_and_shares_its_tables(
    tmp_path: Path, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given a running server on a store
    store = tmp_path / "tables.sqlite3"
    index_path, _ = sample_index
    argv = ["ask", "What do you sell?", "--session", "s2", "--in-process"]
    argv += ["--state", str(store), "--index", str(index_path)]
    with serving(store, sample_index) as server:
        # When another process asks a question --in-process on the same store
        done = run_child(MAIN, argv)

        # Then it is answered without the server
        assert done.returncode == 0, done.stderr
        assert server.posts == 0
        # And the turn the other process wrote is read here at once
        assert [t["session_id"]["S"] for t in table_items(server.runtime, "HistoryTable")] == ["s2"]
