"""Requests to a LocalRuntime's api function, as API Gateway sends them, and its tables."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from concierge_cli.local.runtime import REGION, LocalRuntime


def call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body) of one request."""
    event = {
        "rawPath": path,
        "requestContext": {"http": {"method": method}, "requestId": uuid.uuid4().hex},
        "body": json.dumps(body) if body is not None else None,
    }
    response = runtime.api(event)
    return response["statusCode"], json.loads(response["body"])


def ask(
    runtime: LocalRuntime, question: str, session_id: str | None = None, **fields: Any
) -> tuple[int, dict[str, Any]]:
    """POST /chat: (status, body). `fields` go into the request body (e.g. bypass_cache)."""
    request: dict[str, Any] = {"question": question, **fields}
    if session_id:
        request["session_id"] = session_id
    status, body = call(runtime, "POST", "/chat", request)
    return status, dict(body)


def answer(
    runtime: LocalRuntime, question: str, session_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """POST /chat that must succeed: its body."""
    status, body = ask(runtime, question, session_id, **fields)
    assert status == 200, body
    return body


def table_items(runtime: LocalRuntime, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=runtime.table_names[logical_id]
    )["Items"]
    return items
