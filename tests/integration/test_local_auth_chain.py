"""`concierge serve` with the real local runtime behind its authorizer: what it says when it
starts, and a signed-in question answered by the whole chain while an anonymous one is not."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from local_api import table_items

from concierge import wiring
from concierge.knowledge import IndexFile
from concierge_cli import main as cli
from concierge_cli.local import auth
from concierge_cli.local.auth import Authorizer, LocalKeys, mint
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.server import LocalApiServer

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalKeys]:
    """The repository's local keys, kept in a temporary folder for this test."""
    monkeypatch.setattr(auth, "KEYS_DIR", tmp_path / "keys")
    wiring.reset()
    yield LocalKeys.of(REPO_ROOT)
    wiring.reset()


def serve_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, index: Path, *argv: str
) -> list[str]:
    """What `concierge serve` prints before it serves (it stops as soon as it would)."""
    command = ["--root", str(REPO_ROOT), "serve", "--port", "0", "--quiet"]
    command += ["--state", str(tmp_path / "tables.sqlite3"), "--index", str(index), *argv]
    with mock.patch.object(LocalApiServer, "serve_forever", side_effect=KeyboardInterrupt):
        assert cli.main(command) == 0
    return capsys.readouterr().out.splitlines()


def test_serve_says_which_auth_it_runs_with(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_index: tuple[Path, IndexFile],
    keys: LocalKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the sample index and no auth setting
    index, _ = sample_index

    # When the server starts by default, then with CONCIERGE_AUTH=local
    default = serve_output(capsys, tmp_path, index)
    monkeypatch.setenv("CONCIERGE_AUTH", "local")
    wiring.reset()
    local = serve_output(capsys, tmp_path, index)
    # And with CONCIERGE_AUTH=local but --auth off on its command line
    flag_off = serve_output(capsys, tmp_path, index, "--auth", "off")

    # Then by default it says in one line that auth is off and who a request is
    assert default[0].startswith("Concierge local API on http://127.0.0.1:")
    assert default[2].startswith("auth off: a request is the local user `local` (an admin)")
    # And with auth local it says what it verifies and how to get a token, and made the key
    assert local[2].startswith("auth local: a bearer token is required and verified")
    assert "concierge token --user NAME" in local[2]
    assert keys.jwks_path.is_file()
    # And the command line wins over the environment
    assert flag_off[2].startswith("auth off: ")


def post_chat(url: str, headers: dict[str, str], question: str) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"question": question, "session_id": "s-auth"}).encode()
    try:
        connection.request("POST", "/chat", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_with_auth_local_the_chain_answers_a_signed_in_question_only(
    sample_index: tuple[Path, IndexFile], keys: LocalKeys
) -> None:
    # Given the local runtime behind a server that verifies tokens, and alice's token
    index_path, index = sample_index
    alice = mint("alice", ttl_seconds=60, key=keys.signing_key())
    with LocalRuntime(REPO_ROOT, index_path, index.kb_version) as runtime:
        server = LocalApiServer(
            runtime, HOST, 0, access_log=False, authorizer=Authorizer("local", keys)
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://{HOST}:{server.server_port}"
        try:
            # When a question is asked without a token, then as alice
            anonymous = post_chat(url, {"content-type": "application/json"}, "What do you sell?")
            signed_in = post_chat(url, {"authorization": f"Bearer {alice}"}, "What do you sell?")
            turns = table_items(runtime, "HistoryTable")
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    # Then the anonymous one is refused before the chain runs, and alice's is answered
    assert anonymous[0] == 401
    assert signed_in[0] == 200, signed_in[1]
    assert "Alpenglow" in signed_in[1]["answer"]
    # And only alice's turn is in the history
    assert len(turns) == 1
