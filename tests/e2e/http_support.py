"""Helpers for the end-to-end tests: a real local server, a stdlib HTTP client, and the
checks every reply of the public contract must pass."""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from concierge_cli.local.auth import AUDIENCE, AuthMode, Authorizer, SigningKey, mint
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.server import LocalApiServer
from concierge_cli.local.web import WebSite

HOST = "127.0.0.1"
REGION = "us-east-1"
# Generous: one chat request takes well under a second; this only stops a hung test.
REQUEST_TIMEOUT_S = 30.0

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
CHAT_KEYS = {
    "answer",
    "citations",
    "category",
    "language",
    "cached",
    "session_id",
    "request_id",
    "usage",
    "variant",
}
CITATION_KEYS = {"source", "title", "snippet"}
USAGE_KEYS = {"llm_calls", "input_tokens", "output_tokens", "cost_usd"}
GUARDRAIL_KEYS = {"action", "source", "reasons"}
USAGE_REPORT_KEYS = {"user_id", "day", "tokens", "cost_usd", "limits"}
ERROR_DETAIL_KEYS = {"code", "message", "request_id"}
NOT_FOUND_ANSWER = "could not find"
# Words that only appear in a body when internals leak: stack traces, exception names.
LEAK_MARKERS = ("Traceback", 'File "', "Error:", "Exception")


@dataclass(frozen=True)
class Reply:
    """One HTTP response as a client sees it."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class ChatApi:
    """A client of the Concierge HTTP API, on the stdlib only; one connection per request.

    Without a token it sends no Authorization header (with auth off: the local user, an admin);
    `with_token` makes a client that sends one with every request."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host = host
        self.port = port
        self.token = token

    def with_token(self, token: str) -> ChatApi:
        """A client of the same server whose requests carry `Authorization: Bearer <token>`."""
        return ChatApi(self.host, self.port, token)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if self.token is not None:
            sent.setdefault("authorization", f"Bearer {self.token}")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            names = {name.lower(): value for name, value in response.getheaders()}
            return Reply(status=response.status, headers=names, body=data)
        finally:
            connection.close()

    def post_raw(
        self,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return self.request(
            "POST", "/chat", body, {"content-type": content_type, **(headers or {})}
        )

    def post_json(self, document: Any, headers: dict[str, str] | None = None) -> Reply:
        return self.post_raw(json.dumps(document).encode("utf-8"), headers=headers)

    def chat(
        self,
        question: str,
        session_id: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> Reply:
        """POST /chat; `fields` go into the body too (e.g. bypass_cache=True)."""
        document: dict[str, Any] = {"question": question, **fields}
        if session_id is not None:
            document["session_id"] = session_id
        return self.post_json(document, headers)

    def ask(
        self,
        question: str,
        session_id: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Ask and expect a well-formed answer; the parsed body."""
        reply = self.chat(question, session_id, headers, **fields)
        return assert_chat_reply(reply)

    def usage(self) -> dict[str, Any]:
        """GET /me/usage, which must succeed: the parsed body."""
        reply = self.request("GET", "/me/usage")
        assert reply.status == 200, reply.body[:500]
        assert_json_without_internals(reply)
        body: dict[str, Any] = reply.json()
        assert set(body) == USAGE_REPORT_KEYS
        return body


@contextmanager
def serving(
    runtime: LocalRuntime, authorizer: Authorizer | None = None, website: WebSite | None = None
) -> Iterator[ChatApi]:
    """The local API server on an ephemeral port of 127.0.0.1, in a background thread; without
    an `authorizer`, auth is off (as `concierge serve` by default); `website`: the web page's
    files and configuration, when not the repository's own."""
    server = LocalApiServer(
        runtime, HOST, 0, access_log=False, authorizer=authorizer, website=website
    )
    thread = threading.Thread(target=server.serve_forever, name="concierge-e2e-api", daemon=True)
    thread.start()
    try:
        yield ChatApi(HOST, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- what the emulated AWS account holds (only while the runtime is active) ----------------
def history_items(runtime: LocalRuntime) -> list[dict[str, Any]]:
    return table_items(runtime, "HistoryTable")


def table_items(runtime: LocalRuntime, logical_id: str) -> list[dict[str, Any]]:
    """Every item of one emulated table (HistoryTable, CacheTable, BudgetTable)."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    pages = dynamodb.get_paginator("scan").paginate(TableName=runtime.table_names[logical_id])
    return [item for page in pages for item in page["Items"]]


def items_of(runtime: LocalRuntime, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """What each table holds for one user: the items whose `user_id` is theirs (the history's and
    budget's key, the cache entry's producer)."""
    return {
        logical_id: [
            item
            for item in table_items(runtime, logical_id)
            if item.get("user_id", {}).get("S") == user_id
        ]
        for logical_id in runtime.table_names
    }


def turns_of(runtime: LocalRuntime, user_id: str, session_id: str | None = None) -> list[str]:
    """The questions of a user's stored turns (of one session, when given), oldest first."""
    turns = sorted(
        (item["turn_key"]["S"], item["question"]["S"])
        for item in items_of(runtime, user_id)["HistoryTable"]
        if session_id is None or item["turn_key"]["S"].startswith(f"{session_id}#")
    )
    return [question for _, question in turns]


def empty_tables(runtime: LocalRuntime) -> None:
    """Delete every item of every emulated table (history, cache): a fresh start."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for name in runtime.table_names.values():
        keys = [
            part["AttributeName"]
            for part in dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
        ]
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=name, Key={key: item[key] for key in keys})


def executions(runtime: LocalRuntime) -> list[dict[str, Any]]:
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    found: list[dict[str, Any]] = stepfunctions.list_executions(
        stateMachineArn=runtime.state_machine_arn
    )["executions"]
    return found


def execution_output(runtime: LocalRuntime, request_id: str) -> dict[str, Any]:
    """The chain's own result for a request (its execution is named after the request id)."""
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    prefix = runtime.state_machine_arn.replace(":stateMachine:", ":execution:")
    described = stepfunctions.describe_execution(executionArn=f"{prefix}:{request_id}")
    output: dict[str, Any] = json.loads(described["output"])
    return output


def model_steps(runtime: LocalRuntime, request_id: str) -> list[str]:
    """Which steps called a model for a request, in order (a skipped step is left out)."""
    usage = execution_output(runtime, request_id).get("usage") or []
    return [step["step"] for step in usage if step and step.get("llm_calls")]


def steps_run(runtime: LocalRuntime, request_id: str) -> list[str]:
    """Which model steps ran for a request, in order, whether or not they called a model
    (classify decides a clear first turn from the index, without one)."""
    usage = execution_output(runtime, request_id).get("usage") or []
    return [step["step"] for step in usage if step]


# -- the contract's checks ---------------------------------------------------------------
def assert_json_without_internals(reply: Reply) -> None:
    content_type = reply.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", content_type
    for marker in LEAK_MARKERS:
        assert marker not in reply.text, f"{marker!r} leaked into the body: {reply.text[:300]}"


def assert_chat_reply(reply: Reply) -> dict[str, Any]:
    """A 200 whose body has exactly the public fields, with their types; the parsed body."""
    assert reply.status == 200, reply.body[:500]
    assert_json_without_internals(reply)
    body = reply.json()
    assert set(body) == CHAT_KEYS
    assert isinstance(body["answer"], str)
    assert body["answer"].strip()
    assert isinstance(body["category"], str)
    assert isinstance(body["language"], str)
    assert re.fullmatch(r"[a-z]{2}", body["language"]), body["language"]
    assert isinstance(body["cached"], bool)
    assert isinstance(body["session_id"], str)
    assert SESSION_ID.match(body["session_id"]), body["session_id"]
    assert isinstance(body["request_id"], str)
    assert body["request_id"]
    assert reply.headers.get("x-request-id") == body["request_id"]
    assert isinstance(body["citations"], list)
    for citation in body["citations"]:
        assert set(citation) == CITATION_KEYS
        assert all(isinstance(citation[key], str) for key in CITATION_KEYS)
    usage = body["usage"]
    assert set(usage) == USAGE_KEYS
    for key in ("llm_calls", "input_tokens", "output_tokens"):
        assert type(usage[key]) is int, (key, usage[key])
        assert usage[key] >= 0
    assert isinstance(usage["cost_usd"], int | float)
    assert not isinstance(usage["cost_usd"], bool)
    assert usage["cost_usd"] >= 0
    return body


def assert_guarded_reply(reply: Reply) -> tuple[dict[str, Any], dict[str, Any]]:
    """A 200 with the public fields and `guardrail` (a safety layer intervened): the body
    without `guardrail`, checked as `assert_chat_reply` checks it, and the guardrail."""
    assert reply.status == 200, reply.body[:500]
    document = reply.json()
    guardrail = document.pop("guardrail", None)
    assert isinstance(guardrail, dict), f"no guardrail in {reply.text[:300]}"
    assert set(guardrail) == GUARDRAIL_KEYS
    assert isinstance(guardrail["reasons"], list)
    assert all(isinstance(reason, str) and reason for reason in guardrail["reasons"])
    without = Reply(reply.status, reply.headers, json.dumps(document).encode("utf-8"))
    return assert_chat_reply(without), guardrail


def assert_error_reply(reply: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    """The error shape `{"error": {"code", "message", "request_id"}}`; the inner object."""
    assert reply.status == status, (reply.status, reply.body[:500])
    assert_json_without_internals(reply)
    body = reply.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ERROR_DETAIL_KEYS
    assert all(isinstance(error[key], str) and error[key] for key in ERROR_DETAIL_KEYS)
    if code is not None:
        assert error["code"] == code
    assert reply.headers.get("x-request-id") == error["request_id"]
    return dict(error)


def sources(body: dict[str, Any]) -> list[str]:
    return [citation["source"] for citation in body["citations"]]


def json_body_of_size(size: int, filler: str = "x") -> bytes:
    """A valid chat request of exactly `size` bytes: a real question plus an ignored field
    padded with `filler` (which may be a multi-byte character)."""
    head = b'{"question": "What do you sell?", "padding": "'
    tail = b'"}'
    room = size - len(head) - len(tail)
    unit = filler.encode("utf-8")
    count, remainder = divmod(room, len(unit))
    body = head + unit * count + b"x" * remainder + tail
    assert len(body) == size
    json.loads(body)
    return body


# -- users: the local server in one auth mode, and tokens for its users ---------------------
@dataclass(frozen=True)
class UsersService:
    """A local runtime with daily budgets, behind a real local server in auth `mode`, and the
    local issuer's key (in a temporary folder) that signs its users' tokens.

    With auth `local` the server verifies tokens as API Gateway does; with auth `off` it reads
    them without any check, and a request without one is the local user, an admin."""

    mode: AuthMode
    runtime: LocalRuntime
    api: ChatApi  # no token
    key: SigningKey
    token_limit: int
    token_reserve: int

    def token(
        self,
        user: str,
        *,
        admin: bool = False,
        ttl_seconds: int = 600,
        audience: str = AUDIENCE,
        now: float | None = None,
        key: SigningKey | None = None,
    ) -> str:
        return mint(
            user,
            admin=admin,
            ttl_seconds=ttl_seconds,
            key=key or self.key,
            audience=audience,
            now=now,
        )

    def as_user(self, user: str, *, admin: bool = False) -> ChatApi:
        """A client whose requests carry a valid token for `user` (an admin when `admin`)."""
        return self.api.with_token(self.token(user, admin=admin))
