"""Requests to a LocalRuntime's api function, as API Gateway sends them, and its tables."""

from __future__ import annotations

import json
from typing import Any

import boto3

from concierge_cli.local.runtime import REGION, LocalRuntime
from concierge_cli.local.server import http_api_event

# The user of these requests unless one is named: the local run's own user, an admin.
LOCAL_USER = "local"


def call(
    runtime: LocalRuntime,
    method: str,
    path: str,
    body: Any = None,
    *,
    user: str = LOCAL_USER,
    admin: bool | None = None,
) -> tuple[int, Any]:
    """(status, JSON body) of one request by `user` (an admin when `admin`, which defaults to
    whether the user is the local one)."""
    # The event API Gateway (and the local server) would send for the same request, with the
    # claims its JWT authorizer passes (every value a string, a list as "[a b]").
    data = json.dumps(body).encode("utf-8") if body is not None else b""
    event = http_api_event(method, path, {"content-type": "application/json"}, data)
    is_admin = user == LOCAL_USER if admin is None else admin
    claims = {"sub": user, "cognito:groups": "[admin]" if is_admin else "[]"}
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    response = runtime.api(event)
    return response["statusCode"], json.loads(response["body"])


def ask(
    runtime: LocalRuntime,
    question: str,
    session_id: str | None = None,
    *,
    user: str = LOCAL_USER,
    **fields: Any,
) -> tuple[int, dict[str, Any]]:
    """POST /chat: (status, body). `fields` go into the request body (e.g. bypass_cache)."""
    request: dict[str, Any] = {"question": question, **fields}
    if session_id:
        request["session_id"] = session_id
    status, body = call(runtime, "POST", "/chat", request, user=user)
    return status, dict(body)


def answer(
    runtime: LocalRuntime,
    question: str,
    session_id: str | None = None,
    *,
    user: str = LOCAL_USER,
    **fields: Any,
) -> dict[str, Any]:
    """POST /chat that must succeed: its body."""
    status, body = ask(runtime, question, session_id, user=user, **fields)
    assert status == 200, body
    return body


def table_items(runtime: LocalRuntime, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=runtime.table_names[logical_id]
    )["Items"]
    return items
