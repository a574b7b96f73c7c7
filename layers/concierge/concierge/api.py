"""The HTTP edge: validate a request, run the chain, map its result to the public contract.

Input is an API Gateway HTTP API (payload 2.0) event; output is its response dict. Bad input
never starts an execution; a failed execution never leaks a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from concierge.adapters.executor import ChainExecutor, ExecutionResult
from concierge.cache_keys import cache_key
from concierge.config import ApiSettings
from concierge.errors import ConfigurationError, StoreUnavailableError
from concierge.models.http import (
    SESSION_ID_PATTERN,
    ChatRequest,
    ChatResponse,
    ErrorDetail,
    ErrorResponse,
    SessionDeletion,
    Usage,
)
from concierge.models.state import CacheLookup, ChainFailure, ChainInput, ChainOutput
from concierge.observability import (
    logger,
    record_cache_outcome,
    record_degraded,
    record_response,
)
from concierge.text import detect_language

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_SESSIONS = "/sessions/"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)

# Error names raised by steps (concierge.errors) and by Step Functions, to HTTP statuses.
_FAILURES: dict[str, tuple[int, str, str]] = {
    "ModelThrottledError": (
        503,
        "model_unavailable",
        "The language model is busy. Please retry in a few seconds.",
    ),
    "ModelTimeoutError": (504, "timeout", "The answer took too long. Please retry."),
    "BudgetExceededError": (504, "timeout", "The answer took too long. Please retry."),
    "States.Timeout": (504, "timeout", "The answer took too long. Please retry."),
    "ModelInvocationError": (502, "model_error", "The language model rejected the request."),
    "RetrievalError": (
        503,
        "knowledge_base_unavailable",
        "The knowledge base cannot be searched right now.",
    ),
    "KnowledgeBaseThrottledError": (
        503,
        "knowledge_base_unavailable",
        "The knowledge base is busy. Please retry in a few seconds.",
    ),
    "KnowledgeBaseTimeoutError": (
        504,
        "timeout",
        "The knowledge base took too long to answer. Please retry.",
    ),
    "IndexNotFoundError": (
        503,
        "knowledge_base_unavailable",
        "The knowledge base is not indexed yet.",
    ),
    "ConfigurationError": (
        500,
        "misconfigured",
        "The service is misconfigured; the operators have been told.",
    ),
    "Lambda.TooManyRequestsException": (
        503,
        "busy",
        "The service is busy. Please retry in a few seconds.",
    ),
}
_INTERNAL = (500, "internal_error", "Something went wrong while answering. Please retry.")


class SessionEraser(Protocol):
    def delete_session(self, session_id: str) -> SessionDeletion: ...


@dataclass(frozen=True)
class ApiServices:
    """What the HTTP edge needs, built by the composition root (concierge.wiring)."""

    settings: ApiSettings
    # kb version, prompt versions and answer model: part of every cache key.
    cache_scope: str
    executor: ChainExecutor
    # None when the tables are not configured: DELETE /sessions/{id} is then a 500.
    sessions: SessionEraser | None


class _App:
    def __init__(self, services: Callable[[], ApiServices]) -> None:
        self._services = services

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = _request_id(event)
        try:
            services = self._services()
        except ConfigurationError:
            logger.exception("the api function is misconfigured")
            response = _error(*_FAILURES["ConfigurationError"], request_id)
            record_response(response["statusCode"])
            return response
        return handle(event, services)


def create_app(services: Callable[[], ApiServices]) -> _App:
    return _App(services)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def handle(event: dict[str, Any], services: ApiServices) -> dict[str, Any]:
    request_id = _request_id(event)
    try:
        response = _route(event, request_id, services)
    except Exception:
        # The last line of defence: whatever broke, the client gets the contract's error shape.
        logger.exception("unhandled error in the api function")
        response = _error(*_INTERNAL, request_id)
    record_response(response["statusCode"])
    return response


def _route(event: dict[str, Any], request_id: str, services: ApiServices) -> dict[str, Any]:
    settings = services.settings
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    path = event.get("rawPath", "")
    try:
        if path == "/health":
            if method != "GET":
                raise ApiError(405, "method_not_allowed", "Use GET /health.")
            return _json(200, {"status": "ok"}, request_id)
        if path.startswith(_SESSIONS):
            if method != "DELETE":
                raise ApiError(405, "method_not_allowed", "Use DELETE /sessions/{session_id}.")
            return _json(200, forget_session(path.removeprefix(_SESSIONS), services), request_id)
        if path != "/chat":
            raise ApiError(404, "not_found", f"No route for {path or '/'}.")
        if method != "POST":
            raise ApiError(405, "method_not_allowed", "Use POST /chat.")
        request = parse_chat_request(event, settings.max_body_bytes)
        response = run_chat(
            request,
            request_id,
            services,
            bypass_cache=request.bypass_cache or _asks_for_no_cache(event),
        )
        return _json(200, response, request_id)
    except ApiError as error:
        return _error(error.status, error.code, error.message, request_id)


def forget_session(session_id: str, services: ApiServices) -> SessionDeletion:
    """DELETE /sessions/{id}: the session's turns and the cache entries it produced."""
    if not _SESSION_ID.fullmatch(session_id):
        raise ApiError(400, "invalid_request", "session_id: must match " + SESSION_ID_PATTERN)
    if services.sessions is None:
        raise ApiError(*_FAILURES["ConfigurationError"])
    try:
        deletion = services.sessions.delete_session(session_id)
    except StoreUnavailableError:
        logger.exception("session deletion failed")
        raise ApiError(
            503, "store_unavailable", "The session could not be deleted now. Please retry."
        ) from None
    logger.info(
        "session deleted", extra={"turns": deletion.turns, "cache_entries": deletion.cache_entries}
    )
    return deletion


def _asks_for_no_cache(event: dict[str, Any]) -> bool:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return "no-cache" in headers.get("cache-control", "").lower()


def parse_chat_request(event: dict[str, Any], max_body_bytes: int) -> ChatRequest:
    body = event.get("body") or ""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "invalid_json", "The body is not valid base64.") from None
    if len(raw) > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"The body is larger than {max_body_bytes} bytes.")
    try:
        # Decoded strictly first: json.loads(bytes) would also accept UTF-16 and UTF-32.
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "The body must be a UTF-8 JSON object.") from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    try:
        return ChatRequest.model_validate(document)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", _describe(exc)) from None


def run_chat(
    request: ChatRequest,
    request_id: str,
    services: ApiServices,
    *,
    bypass_cache: bool = False,
) -> ChatResponse:
    settings = services.settings
    now = time.time()
    session_id = request.session_id or uuid.uuid4().hex
    scope = services.cache_scope
    # Detected from the words alone, so the first-turn lookup needs no model call.
    language = detect_language(request.question)
    chain_input = ChainInput(
        request_id=request_id,
        session_id=session_id,
        question=request.question,
        lookup=CacheLookup(
            cache_key=cache_key(request.question, language, scope),
            question=request.question,
            language=language,
        ),
        semantic=settings.semantic_cache,
        cache_language=language,
        cache_scope=scope,
        kb_version=settings.kb_version,
        cache_bypass=bypass_cache,
        history_turns=settings.history_turns,
        turn_key=f"{int(now * 1000):013d}#{request_id}",
        now_epoch_seconds=f"{int(now):010d}",
        deadline_ms=int((now * 1000) + settings.request_budget_ms),
        cache_expires_at=int(now) + settings.cache_ttl_seconds,
        history_expires_at=int(now) + settings.history_ttl_seconds,
    )
    result = services.executor.run(
        request_id, chain_input.model_dump(mode="json"), settings.request_budget_ms / 1000 + 1
    )
    output = _successful_output(result)
    record_cache_outcome(
        hit=output.status == "cached", bypassed=bypass_cache, semantic=output.semantic
    )
    if output.degraded:
        # Answered all the same; the error names (never their causes, which may quote user
        # text) say which store let the request down.
        record_degraded(output.degraded)
        logger.warning(
            "answered with a degraded store",
            extra={"degraded": {part: _error_name(v) for part, v in output.degraded.items()}},
        )
    usage = Usage()
    for step in output.usage:
        usage.llm_calls += step.llm_calls
        usage.input_tokens += step.input_tokens
        usage.output_tokens += step.output_tokens
        usage.cost_usd += step.cost_usd
    usage.cost_usd = round(usage.cost_usd, 8)
    return ChatResponse(
        answer=output.answer,
        citations=output.citations,
        category=output.category,
        language=output.language,
        cached=output.status == "cached",
        session_id=session_id,
        request_id=request_id,
        usage=usage,
    )


def _successful_output(result: ExecutionResult) -> ChainOutput:
    if result.status == "TIMED_OUT":
        logger.warning("chain timed out")
        raise ApiError(*_FAILURES["States.Timeout"])
    if result.status != "SUCCEEDED" or result.output is None:
        logger.error(
            "chain execution failed", extra={"status": result.status, "error": result.error}
        )
        raise ApiError(*_FAILURES.get(result.error or "", _INTERNAL))
    if result.output.get("status") == "failed":
        failure = ChainFailure.model_validate(result.output)
        # The cause may quote model output or user text: log the error name only.
        logger.error("chain step failed", extra={"error": failure.error})
        raise ApiError(*_FAILURES.get(failure.error, _INTERNAL))
    return ChainOutput.model_validate(result.output)


def _error_name(failure: Any) -> str:
    return str(failure.get("Error", "unknown")) if isinstance(failure, dict) else "unknown"


def _request_id(event: dict[str, Any]) -> str:
    given = str(event.get("requestContext", {}).get("requestId") or "")
    # Execution names allow [A-Za-z0-9_-]; API Gateway ids may carry '='.
    safe = _UNSAFE_ID_CHARS.sub("", given)[:64]
    return safe or uuid.uuid4().hex


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{field}: {first['msg']}"


def _json(status: int, body: BaseModel | dict[str, Any], request_id: str) -> dict[str, Any]:
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-request-id": request_id},
        "body": json.dumps(payload, ensure_ascii=False),
    }


def _error(status: int, code: str, message: str, request_id: str) -> dict[str, Any]:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, request_id=request_id))
    return _json(status, body, request_id)
