"""The local server and `concierge ask` play API Gateway's JWT authorizer: what reaches the api
function (its claims) or what is refused before it (401), over HTTP and in-process alike.

The api function is a fake here that keeps the events it gets, so these tests check the edge
in front of it, not the chain behind it (test_local_auth_chain.py runs the real one)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from concierge import wiring
from concierge_cli import main as cli
from concierge_cli.local.auth import AuthMode, Authorizer, LocalKeys
from concierge_cli.local.server import LocalApiServer
from concierge_cli.support import ServerRecord

HOST = "127.0.0.1"
CHILD_TIMEOUT_S = 120
ANSWER = {
    "answer": "Gear.",
    "citations": [],
    "category": "products",
    "language": "en",
    "cached": False,
    "session_id": "s1",
    "request_id": "r",
    "usage": {"llm_calls": 0},
}
# The claims that name who is asking (the rest are times and a token id).
IDENTITY = ("sub", "cognito:groups", "iss", "aud", "client_id", "token_use")


class FakeRuntime:
    """Stands for the local runtime: its api function answers every request and keeps the
    events it got."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[dict[str, Any]] = []

    def api(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(ANSWER),
        }

    def __enter__(self) -> FakeRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def chats(self) -> list[dict[str, Any]]:
        """The POST /chat events (`concierge ask` also asks GET /health of a server)."""
        return [e for e in self.events if e["routeKey"] == "POST /chat"]

    def identities(self) -> list[dict[str, str] | None]:
        """Who asked each question, as the function read it from its event."""
        found: list[dict[str, str] | None] = []
        for event in self.chats():
            jwt = (event["requestContext"].get("authorizer") or {}).get("jwt")
            claims = jwt["claims"] if jwt else None
            found.append({k: claims[k] for k in IDENTITY if k in claims} if claims else None)
        return found


class Local:
    """A repository (for `--root`), its tables and index paths, and a local server on them."""

    def __init__(self, root: Path, url: str, runtime: FakeRuntime) -> None:
        self.root = root
        self.url = url
        self.runtime = runtime
        self.store = root / ".concierge" / "tables.sqlite3"
        self.index = root / ".concierge" / "index.json"

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        headers_read = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers_read, json.loads(data)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A folder `concierge` takes for a repository root; its keys are its own."""
    root = tmp_path / "repo"
    (root / ".concierge").mkdir(parents=True)
    (root / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    return root


@contextmanager
def serving(root: Path, mode: AuthMode) -> Iterator[Local]:
    """A local server with auth `mode` in a thread, and the record `concierge ask` looks for."""
    runtime = FakeRuntime(root)
    authorizer = Authorizer(mode, LocalKeys.of(root))
    server = LocalApiServer(runtime, HOST, 0, access_log=False, authorizer=authorizer)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    local = Local(root, f"http://{HOST}:{server.server_port}", runtime)
    record = ServerRecord(local.url, os.getpid(), local.store, local.index)
    thread.start()
    record.write()
    try:
        yield local
    finally:
        record.remove()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def auth_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Sets CONCIERGE_AUTH (what `concierge ask` in-process obeys) for this test."""

    def use(mode: AuthMode) -> None:
        monkeypatch.setenv("CONCIERGE_AUTH", mode)
        wiring.reset()

    yield use
    wiring.reset()


def ask(
    capsys: pytest.CaptureFixture[str], local: Local, *argv: str, in_process: bool = False
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `concierge ask` on the local server's tables."""
    where = ["--in-process"] if in_process else []
    command = ["--root", str(local.root), "ask", "What do you sell?", *argv, *where]
    command += ["--state", str(local.store), "--index", str(local.index)]
    # In-process, the chain is the same fake as the server's.
    with mock.patch.object(cli, "_runtime", return_value=local.runtime):
        code = cli.main(command)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def token(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> str:
    assert cli.main(["--root", str(root), "token", *argv]) == 0
    return capsys.readouterr().out.strip()


def test_auth_local_over_http_health_needs_no_token_and_chat_needs_a_valid_one(
    capsys: pytest.CaptureFixture[str], repository: Path
) -> None:
    # Given a server that verifies tokens, and a token from `concierge token`
    alice = token(capsys, repository, "--user", "alice", "--admin")
    chat = json.dumps({"question": "What do you sell?"}).encode()
    with serving(repository, "local") as local:
        # When /health is asked without a token, /chat without one, with a forged one and
        # with alice's
        health = local.request("GET", "/health")
        anonymous = local.request("POST", "/chat", {"content-type": "application/json"}, chat)
        forged = local.request("POST", "/chat", {"authorization": "Bearer a.b.c"}, chat)
        signed_in = local.request("POST", "/chat", {"Authorization": f"Bearer {alice}"}, chat)

    # Then /health reaches the function without claims
    assert health[0] == 200
    assert "authorizer" not in local.runtime.events[0]["requestContext"]
    # And /chat without a token is a 401 the function never sees, in the API's error shape,
    # its request id in the header too, with a Bearer challenge
    status, headers, body = anonymous
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert headers["x-request-id"] == body["error"]["request_id"]
    assert headers["www-authenticate"] == "Bearer"
    # And a forged token is a 401 that says it is refused
    assert forged[0] == 401
    assert forged[1]["www-authenticate"].startswith('Bearer error="invalid_token"')
    # And alice's request reaches the function as alice, an admin, claims as strings
    assert signed_in[0] == 200
    assert local.runtime.identities() == [
        {
            "sub": "alice",
            "cognito:groups": "[admin]",
            "iss": "https://localhost/concierge",
            "aud": "concierge-local",
            "client_id": "concierge-local",
            "token_use": "id",
        },
    ]


def test_auth_off_over_http_is_the_local_admin_or_the_token_s_user_unverified(
    capsys: pytest.CaptureFixture[str], repository: Path, tmp_path: Path
) -> None:
    # Given a server with auth off, and a token signed by a key it has never seen
    other_root = tmp_path / "other"
    other_root.mkdir()
    (other_root / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    stranger = token(capsys, other_root, "--user", "bob")
    chat = json.dumps({"question": "What do you sell?"}).encode()
    with serving(repository, "off") as local:
        # When /chat is asked without a token, then with bob's
        anonymous = local.request("POST", "/chat", {}, chat)
        bob = local.request("POST", "/chat", {"authorization": f"Bearer {stranger}"}, chat)

    # Then both are answered: the first as the local admin, the second as bob
    assert (anonymous[0], bob[0]) == (200, 200)
    users = [(i or {}).get("sub") for i in local.runtime.identities()]
    assert users == ["local", "bob"]
    assert (local.runtime.identities()[0] or {})["cognito:groups"] == "[admin]"


@pytest.mark.parametrize("mode", ["off", "local"])
def test_ask_as_a_user_is_the_same_user_through_a_server_and_in_process(
    capsys: pytest.CaptureFixture[str], repository: Path, auth_mode: Any, mode: AuthMode
) -> None:
    # Given a server with auth `mode`, and `concierge ask` in-process with the same mode
    auth_mode(mode)
    with serving(repository, mode) as local:
        # When the same users ask through the server, then in-process
        argvs = [["--user", "alice", "--admin"], ["--user", "bob"]]
        served = [ask(capsys, local, *argv) for argv in argvs]
        alone = [ask(capsys, local, *argv, in_process=True) for argv in argvs]

    # Then every question is answered, the same way
    assert served == alone
    assert [code for code, _, _ in served] == [0, 0]
    # And the function saw the same identities both ways: alice an admin, bob not
    identities = local.runtime.identities()
    assert identities[:2] == identities[2:]
    assert [(i or {}).get("sub") for i in identities[:2]] == ["alice", "bob"]
    assert (identities[0] or {}).get("cognito:groups") == "[admin]"
    assert "cognito:groups" not in (identities[1] or {})


def test_ask_without_a_user_is_the_local_admin_with_auth_off_both_ways(
    capsys: pytest.CaptureFixture[str], repository: Path, auth_mode: Any
) -> None:
    # Given auth off, on the server and in-process
    auth_mode("off")
    with serving(repository, "off") as local:
        # When a question is asked without --user, through the server, then in-process
        served = ask(capsys, local)
        alone = ask(capsys, local, in_process=True)

    # Then both are answered as the local user, an admin
    assert served == alone
    assert served[0] == 0
    assert [(i or {}).get("sub") for i in local.runtime.identities()] == ["local", "local"]


def test_ask_without_a_user_is_refused_with_auth_local_both_ways(
    capsys: pytest.CaptureFixture[str], repository: Path, auth_mode: Any
) -> None:
    # Given auth local, on the server and in-process
    auth_mode("local")
    with serving(repository, "local") as local:
        # When a question is asked without --user, through the server, then in-process
        served = ask(capsys, local)
        alone = ask(capsys, local, in_process=True)

    # Then both fail the same way: the 401's message, and a hint to pass --user
    assert served == alone
    code, out, err = served
    assert (code, out) == (1, "")
    assert err.startswith("error 401: A bearer token is required")
    assert "ask with --user NAME" in err
    # And the function never saw either question
    assert local.runtime.chats() == []


def test_ask_as_a_user_through_a_server_loads_neither_the_emulator_nor_jwt(
    repository: Path,
) -> None:
    # Given a running server, and a command line that reports the heavy modules it loaded
    report_heavy_imports = (
        "import sys\n"
        "from concierge_cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = ('boto3', 'botocore', 'moto', 'pydantic', 'jwt')\n"
        "print('heavy:', *[m for m in heavy if m in sys.modules], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    with serving(repository, "local") as local:
        argv = ["--root", str(repository), "ask", "What do you sell?", "--user", "alice"]
        argv += ["--state", str(local.store), "--index", str(local.index)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}

        # When a question is asked as alice in another process
        done = subprocess.run(
            [sys.executable, "-c", report_heavy_imports, *argv],
            capture_output=True,
            text=True,
            env=environment,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )

    # Then the server answered it, as alice
    assert done.returncode == 0, done.stderr
    assert [(i or {}).get("sub") for i in local.runtime.identities()] == ["alice"]
    # And the asking process signed the token without PyJWT and loaded nothing heavy
    assert done.stderr.strip() == "heavy:"
