"""The HTTP edge: POST /chat, DELETE /sessions/{session_id} and GET /health on Powertools'
`APIGatewayHttpResolver`, validated against the models of `concierge.models.http`.

The same route definitions are the OpenAPI document (`openapi_document()`). Around them, the
contract adds what the resolver does not do by itself:

- the body of POST /chat is read strictly before it is validated: valid base64 when encoded,
  at most `max_body_bytes` once decoded (413), UTF-8, one JSON object (400 `invalid_json`);
- every failure is `{"error": {"code", "message", "request_id"}}` with the contract's status:
  a validation error is a 400 (not Powertools' 422), an unknown path a 404, a known path with
  another method a 405, a failed chain its `_FAILURES` status, anything else a 500 without
  internals;
- every response carries `x-request-id` and is counted.

Bad input never starts an execution. Building the app (and its OpenAPI document) needs no
settings and no AWS: the services are asked for on the first request that needs them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

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
    Health,
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

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import (
        OpenAPIResponse,
        OpenAPIResponseHeader,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext

CHAT_PATH = "/chat"
HEALTH_PATH = "/health"
SESSION_PATH = "/sessions/<session_id>"
_SESSIONS = "/sessions/"
API_TITLE = "Concierge"
# The version of the HTTP contract (not of the package): change it when the contract changes.
API_VERSION = "1"

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_JSON = "application/json"
_NOT_JSON = (400, "invalid_json", "The body must be a UTF-8 JSON object.")

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

# What an error status means, for the OpenAPI document.
_MISCONFIGURED_OR_INTERNAL = "`misconfigured`, or `internal_error` (never with a stack trace)"
_REQUEST_ID_HEADER: dict[str, OpenAPIResponseHeader] = {
    "x-request-id": {
        "description": "The request id, also in error bodies and in every log line of the request",
        "schema": {"type": "string"},
    }
}


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


class ApiError(Exception):
    """An answer of the contract other than 200: its status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HttpApi(APIGatewayHttpResolver):
    """Powertools' resolver with validation on, and the contract's frame around each request.

    `resolve` reads the body of POST /chat strictly before the validation middleware parses
    it (the middleware runs first in Powertools' stack, so no middleware can), adds
    `x-request-id` to every response and counts it. It also resolves one request at a time:
    the resolver keeps the current event on its class and the request's state in
    `self.context`, so it must not serve two threads at once (Lambda never asks it to; the
    local server does).
    """

    def __init__(self, services: Callable[[], ApiServices]) -> None:
        super().__init__(
            enable_validation=True,
            # Never Powertools' debug answers (a 500 with the traceback in its body).
            debug=False,
            serializer=partial(json.dumps, ensure_ascii=False),
            json_body_deserializer=_json_object,
        )
        self._services = services
        self._one_at_a_time = threading.Lock()

    def services(self) -> ApiServices:
        """What the routes need, built on first use; a missing setting is a 500 misconfigured."""
        try:
            return self._services()
        except ConfigurationError:
            logger.exception("the api function is misconfigured")
            raise ApiError(*_FAILURES["ConfigurationError"]) from None

    @property
    def request_id(self) -> str:
        """The current request's id (inside a route or an exception handler)."""
        return str(self.context["request_id"])

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request_id = _request_id(event)
        with self._one_at_a_time:
            try:
                if _is_chat(event):
                    event = _with_text_body(event, self.services().settings.max_body_bytes)
                self.context["request_id"] = request_id  # cleared by super().resolve()
                response = super().resolve(event, context)
            except ApiError as error:  # the body of POST /chat, refused before validation
                response = _bare_response(error, request_id)
            except Exception as error:  # a malformed event, or a handler that failed itself
                _log_unexpected(error)
                response = _bare_response(ApiError(*_INTERNAL), request_id)
        response["headers"] = {**(response.get("headers") or {}), "x-request-id": request_id}
        record_response(int(response["statusCode"]))
        return response


def create_app(services: Callable[[], ApiServices]) -> APIGatewayHttpResolver:
    """The HTTP API; `services` is called by the routes that need it, not before."""
    app = HttpApi(services)

    @app.post(
        CHAT_PATH,
        operation_id="chat",
        summary="Answer a question from the knowledge base",
        description=(
            "Runs the chain: history, cache, classify or condense, retrieve, answer. Without a"
            " `session_id` a new session is issued; with one, the turn is added to its history"
            " and a follow-up is understood against it."
        ),
        responses=_responses(
            "The answer, its citations and what it cost",
            {
                400: "`invalid_json`: the body is not one UTF-8 JSON object;"
                " `invalid_request`: a field is missing or invalid",
                413: "`payload_too_large`: the body is larger than 64 KiB",
                500: _MISCONFIGURED_OR_INTERNAL,
                502: "`model_error`: the language model rejected the request",
                503: "`model_unavailable`, `knowledge_base_unavailable` or `busy`: retry",
                504: "`timeout`: over the time budget; retry",
            },
        ),
    )
    def chat(
        request: Annotated[
            ChatRequest,
            Body(description="A UTF-8 JSON object of at most 64 KiB; other fields are ignored"),
        ],
        cache_control: Annotated[
            str | None,
            Header(description="`no-cache` answers as if there were no cache, as `bypass_cache`"),
        ] = None,
    ) -> ChatResponse:
        bypass_cache = request.bypass_cache or "no-cache" in (cache_control or "").lower()
        return run_chat(request, app.request_id, app.services(), bypass_cache=bypass_cache)

    @app.delete(
        SESSION_PATH,
        operation_id="deleteSession",
        summary="Forget a session",
        description=(
            "Deletes the session's turns and the cache entries its questions produced (an entry"
            " another session has since replaced is left alone). Zeros when there was nothing."
        ),
        responses=_responses(
            "What was deleted",
            {
                400: "`invalid_request`: not a session id",
                500: _MISCONFIGURED_OR_INTERNAL,
                503: "`store_unavailable`: the tables cannot be reached now; retry",
            },
        ),
    )
    def delete_session(
        session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="The session")],
    ) -> SessionDeletion:
        return forget_session(session_id, app.services())

    @app.get(
        HEALTH_PATH,
        operation_id="health",
        summary="Whether the function can answer",
        responses=_responses("Up", {500: _MISCONFIGURED_OR_INTERNAL}),
    )
    def health() -> Health:
        app.services()
        return Health()

    def no_route(_: NotFoundError) -> Response[dict[str, Any]]:
        request = app.current_event
        return _response(_no_route(request.http_method.upper(), request.path), app.request_id)

    def invalid(error: RequestValidationError) -> Response[dict[str, Any]]:
        return _response(_invalid(error), app.request_id)

    def refused(error: ApiError) -> Response[dict[str, Any]]:
        return _response(error, app.request_id)

    def unexpected(error: Exception) -> Response[dict[str, Any]]:
        # The last line of defence: whatever broke, the client gets the contract's error shape.
        _log_unexpected(error)
        return _response(ApiError(*_INTERNAL), app.request_id)

    app.not_found(no_route)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(ApiError)(refused)
    app.exception_handler(Exception)(unexpected)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API, generated from `create_app`'s routes."""
    schema = create_app(_no_services).get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "A RAG chat backend: answers questions about an organisation's documents, in the"
            " user's language, with citations. Every error is"
            ' `{"error": {"code", "message", "request_id"}}`.'
        ),
    )
    document: dict[str, Any] = json.loads(schema)
    # Powertools documents its own 422 on every operation; this API answers those with a 400.
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(unused, None)
    return document


def _no_services() -> ApiServices:
    raise ConfigurationError("the OpenAPI document is generated without services")


def _responses(answer: str, failures: Mapping[int, str]) -> dict[int, OpenAPIResponse]:
    """A route's documented responses: its 200 (the route's return model) and its errors."""
    documented: dict[int, OpenAPIResponse] = {
        200: {"description": answer, "headers": _REQUEST_ID_HEADER}
    }
    for status, description in failures.items():
        documented[status] = {
            "description": description,
            "headers": _REQUEST_ID_HEADER,
            "content": {_JSON: {"model": ErrorResponse}},
        }
    return documented


# -- reading the request -----------------------------------------------------------------
def _is_chat(event: Mapping[str, Any]) -> bool:
    request = APIGatewayProxyEventV2(dict(event))
    return request.http_method.upper() == "POST" and request.path == CHAT_PATH


def _with_text_body(event: Mapping[str, Any], max_body_bytes: int) -> dict[str, Any]:
    """The event with its body as checked UTF-8 text, to be parsed as JSON whatever its
    declared content type (as it always was: `curl -d` says form-urlencoded)."""
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
            raise ApiError(400, "invalid_json", "The body is not valid base64.") from None
    if len(raw) > max_body_bytes:
        raise ApiError(413, "payload_too_large", f"The body is larger than {max_body_bytes} bytes.")
    try:
        # Decoded strictly here: json.loads(bytes) would also accept UTF-16 and UTF-32.
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(*_NOT_JSON) from None
    if not text:
        raise ApiError(*_NOT_JSON)
    return text


def _json_object(text: str) -> dict[str, Any]:
    """The resolver's JSON deserializer: one JSON object, or a 400 (never a crash)."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ApiError(*_NOT_JSON) from None
    if not isinstance(document, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    return document


def _request_id(event: Mapping[str, Any]) -> str:
    given = str((event.get("requestContext") or {}).get("requestId") or "")
    # Execution names allow [A-Za-z0-9_-]; API Gateway ids may carry '='.
    safe = _UNSAFE_ID_CHARS.sub("", given)[:64]
    return safe or uuid.uuid4().hex


# -- the routes' work --------------------------------------------------------------------
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


def forget_session(session_id: str, services: ApiServices) -> SessionDeletion:
    """DELETE /sessions/{id}: the session's turns and the cache entries it produced."""
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


# -- failures ------------------------------------------------------------------------------
def _no_route(method: str, path: str) -> ApiError:
    """No route matched: a known path with another method is a 405, the rest a 404."""
    if path == CHAT_PATH:
        return ApiError(405, "method_not_allowed", "Use POST /chat.")
    if path == HEALTH_PATH:
        return ApiError(405, "method_not_allowed", "Use GET /health.")
    if path.startswith(_SESSIONS):
        if method == "DELETE":  # an id the route's pattern cannot match (a '/', nothing)
            return ApiError(400, "invalid_request", "session_id: must match " + SESSION_ID_PATTERN)
        return ApiError(405, "method_not_allowed", "Use DELETE /sessions/{session_id}.")
    return ApiError(404, "not_found", f"No route for {path or '/'}.")


def _invalid(error: RequestValidationError) -> ApiError:
    """Powertools' validation error as the contract's 400, naming the first wrong field."""
    errors = list(error.errors()) or [{"loc": ("body",), "msg": "invalid", "type": ""}]
    first = errors[0]
    where, *field = first["loc"]
    if where == "response":  # a route's own answer broke its model: a bug, not a bad request
        logger.error("a response does not match its model", extra={"error": first["type"]})
        return ApiError(*_INTERNAL)
    name = ".".join(str(part) for part in field) or str(where)
    if where == "path" and first["type"] == "string_pattern_mismatch":
        return ApiError(400, "invalid_request", f"{name}: must match {first['ctx']['pattern']}")
    return ApiError(400, "invalid_request", f"{name}: {first['msg']}")


def _log_unexpected(error: BaseException) -> None:
    # The name and where it was raised, not the message: a pydantic error quotes its input,
    # which may be the question or the answer.
    logger.error(
        "unhandled error in the api function",
        extra={
            "error": type(error).__name__,
            "trace": "".join(traceback.format_tb(error.__traceback__)),
        },
    )


def _error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    detail = ErrorDetail(code=error.code, message=error.message, request_id=request_id)
    return ErrorResponse(error=detail).model_dump(mode="json")


def _response(error: ApiError, request_id: str) -> Response[dict[str, Any]]:
    return Response(
        status_code=error.status, content_type=_JSON, body=_error_body(error, request_id)
    )


def _bare_response(error: ApiError, request_id: str) -> dict[str, Any]:
    """An error answered before (or outside) Powertools' resolution, in the same shape."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": _JSON},
        "body": json.dumps(_error_body(error, request_id), ensure_ascii=False),
        "isBase64Encoded": False,
    }
