"""Reading a request before the routes see it: its id, its caller, and a strict JSON body.

API Gateway's JWT authorizer has verified the caller's token before the function runs and
passes its claims in the event (`requestContext.authorizer.jwt.claims`); the local server does
the same. A route that needs a user and an event without claims is a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from concierge.api.errors import NOT_JSON, failure
from concierge.models.http import MAX_REQUEST_ID_CHARS
from concierge.models.identity import User, user_from_claims

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_JSON = "application/json"


def request_id(event: Mapping[str, Any]) -> str:
    given = str((event.get("requestContext") or {}).get("requestId") or "")
    # Execution names allow [A-Za-z0-9_-]; API Gateway ids may carry '='. POST /feedback names
    # an answer by this id (models.http.REQUEST_ID_PATTERN).
    safe = _UNSAFE_ID_CHARS.sub("", given)[:MAX_REQUEST_ID_CHARS]
    return safe or uuid.uuid4().hex


def method_and_path(event: Mapping[str, Any]) -> tuple[str, str]:
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method", "")).upper(), str(event.get("rawPath") or http.get("path") or "")


def caller(event: Mapping[str, Any], admin_claim: str, admin_group: str) -> User | None:
    """The user the authorizer verified, or None (no token reached the function)."""
    context = event.get("requestContext") or {}
    claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
    return user_from_claims(claims, admin_claim, admin_group)


def with_text_body(event: Mapping[str, Any], max_body_bytes: int) -> dict[str, Any]:
    """The event with its body as checked UTF-8 text, to be parsed as JSON whatever its
    declared content type (`curl -d` says form-urlencoded)."""
    headers = {
        name: value
        for name, value in (event.get("headers") or {}).items()
        if str(name).lower() != "content-type"
    }
    return {
        **event,
        "body": _body_text(event, max_body_bytes),
        "isBase64Encoded": False,
        "headers": {**headers, "content-type": _JSON},
    }


def _body_text(event: Mapping[str, Any], max_body_bytes: int) -> str:
    body = event.get("body") or ""
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, refused below.
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise failure(400, "invalid_json", "The body is not valid base64.").error() from None
    if len(raw) > max_body_bytes:
        raise failure(
            413, "payload_too_large", f"The body is larger than {max_body_bytes} bytes."
        ).error()
    try:
        # Decoded strictly here: json.loads(bytes) would also accept UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NOT_JSON.error() from None
    if not text:
        raise NOT_JSON.error()
    return text


def json_object(text: str) -> dict[str, Any]:
    """The resolver's JSON deserializer: one JSON object, or a 400 (never a crash)."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise NOT_JSON.error() from None
    if not isinstance(document, dict):
        raise failure(400, "invalid_json", "The body must be a JSON object.").error()
    return document
