"""`concierge eval --env ENV` as the pipeline runs it: the stack's ApiUrl from its outputs, the
eval user signed in through the stack's Cognito app client, and a deployed gate that holds
judged checks refusing to run without a judge. CloudFormation and Cognito are answered by
Stubbers; the "stack" is a small HTTP server here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from concierge import wiring
from concierge_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
CASE = """\
- description: "en company: founding year"
  vars:
    question: "When was Alpenglow Outdoor founded?"
  metadata:
    id: en-company-901
    category: company
    language: en
    kind: answerable
    sources: [en-company-history.md]
    facts: ["2011"]
"""


class _Api(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append((self.path, self.headers.get("authorization"), body))
        reply = json.dumps(
            {
                "answer": "Alpenglow Outdoor was founded in 2011.",
                "citations": [
                    {"source": "en-company-history.md", "title": "About", "snippet": "2011"}
                ],
                "category": "company",
                "language": "en",
                "cached": False,
                "variant": body.get("variant", "default"),
                "usage": {"llm_calls": 2, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(CASE, encoding="utf-8")
    return path


def _stack_outputs(url: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {
                "StackName": "concierge-dev",
                "CreationTime": datetime.now(UTC),
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": [
                    {"OutputKey": "ApiUrl", "OutputValue": url},
                    {"OutputKey": "UserPoolClientId", "OutputValue": "client-123"},
                ],
            }
        ]
    }


def test_env_signs_the_eval_user_in_and_asks_the_stacks_api(
    api: str, cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given dev's stack (eu-west-1 in samconfig.toml) and the eval user's credentials
    monkeypatch.setenv("CONCIERGE_EVAL_USER", "eval@example.com")
    monkeypatch.setenv("CONCIERGE_EVAL_PASSWORD", "a-long-Passphrase-1")
    monkeypatch.delenv("CONCIERGE_EVAL_TOKEN", raising=False)
    wiring.reset()
    cloudformation = Stubber(wiring.aws_client("cloudformation", region="eu-west-1"))
    cloudformation.add_response(
        "describe_stacks", _stack_outputs(api), {"StackName": "concierge-dev"}
    )
    cognito = Stubber(wiring.aws_client("cognito-idp", region="eu-west-1"))
    cognito.add_response(
        "initiate_auth",
        {"AuthenticationResult": {"IdToken": "id-token-of-eval"}},
        {
            "ClientId": "client-123",
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "eval@example.com", "PASSWORD": "a-long-Passphrase-1"},
        },
    )

    # When the case is evaluated against dev, held to the gate's (unjudged) thresholds
    with cloudformation, cognito:
        code = main(
            [
                "--root",
                str(REPO_ROOT),
                "eval",
                "--env",
                "dev",
                "--cases",
                str(cases),
                "--thresholds",
                "gate",
                "--quiet",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    wiring.reset()

    # Then the stack's API was asked with the eval user's token, and the case passed
    cloudformation.assert_no_pending_responses()
    cognito.assert_no_pending_responses()
    assert [(path, auth) for path, auth, _ in _Api.seen] == [("/chat", "Bearer id-token-of-eval")]
    assert _Api.seen[0][2]["question"] == "When was Alpenglow Outdoor founded?"
    assert code == 0


def test_a_user_the_pool_challenges_stops_the_eval_with_the_reason(
    api: str, cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Given an eval user whose password was never made permanent
    monkeypatch.setenv("CONCIERGE_EVAL_USER", "eval@example.com")
    monkeypatch.setenv("CONCIERGE_EVAL_PASSWORD", "temporary")
    monkeypatch.delenv("CONCIERGE_EVAL_TOKEN", raising=False)
    wiring.reset()
    cloudformation = Stubber(wiring.aws_client("cloudformation", region="eu-west-1"))
    cloudformation.add_response("describe_stacks", _stack_outputs(api))
    cognito = Stubber(wiring.aws_client("cognito-idp", region="eu-west-1"))
    cognito.add_response("initiate_auth", {"ChallengeName": "NEW_PASSWORD_REQUIRED"})

    # When dev is evaluated
    with cloudformation, cognito:
        code = main(
            [
                "--root",
                str(REPO_ROOT),
                "eval",
                "--env",
                "dev",
                "--cases",
                str(cases),
                "--thresholds",
                "gate",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    wiring.reset()

    # Then nothing was asked, and the error names the challenge
    assert code == 2
    assert _Api.seen == []
    assert "NEW_PASSWORD_REQUIRED" in capsys.readouterr().err


def test_the_deployed_gate_without_a_judge_refuses_to_run(
    api: str, cases: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Given no judge configured
    monkeypatch.delenv("CONCIERGE_JUDGE_MODEL", raising=False)

    # When a stack is evaluated against the deployed thresholds (correctness, faithfulness)
    code = main(
        [
            "--root",
            str(REPO_ROOT),
            "eval",
            "--url",
            api,
            "--cases",
            str(cases),
            "--out",
            str(tmp_path / "out"),
        ]
    )

    # Then it stops before asking anything, naming what is missing
    assert code == 2
    assert _Api.seen == []
    assert "correctness, faithfulness: name a judge" in capsys.readouterr().err
