"""The HTTP API on Powertools' `APIGatewayHttpResolver`, validated against the models of
`concierge.models.http`; the same route definitions are the OpenAPI document.

Around the routes, the contract adds what the resolver does not do by itself (`HttpApi`):

- the caller: a route for signed-in users answers 401 to an event without a verified token's
  claims, an admin route 403 to a user who is not an admin — before the body is read, as API
  Gateway's authorizer would have;
- a JSON body is read strictly before it is validated: valid base64 when encoded, at most
  `max_body_bytes` once decoded (413), UTF-8, one JSON object (400 `invalid_json`);
- every failure is `{"error": {"code", "message", "request_id"}}` with the contract's status:
  a validation error is a 400 (not Powertools' 422), an unknown path a 404, a known path with
  another method a 405, anything unexpected a 500 without internals;
- every response carries `x-request-id` and is counted.

Bad input never starts an execution. Building the app (and its OpenAPI document) needs no
settings and no AWS: the services are asked for on the first request that needs them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path

from concierge.api import accounts
from concierge.api.chat import run_chat
from concierge.api.errors import (
    FORBIDDEN,
    INTERNAL,
    JSON,
    MISCONFIGURED,
    UNAUTHORIZED,
    ApiError,
    Failure,
    failure,
    log_unexpected,
)
from concierge.api.feedback import rate_answer
from concierge.api.requests import (
    caller,
    json_object,
    method_and_path,
    request_id,
    with_text_body,
)
from concierge.api.services import ApiServices
from concierge.errors import ConfigurationError
from concierge.models.http import (
    SESSION_ID_PATTERN,
    USER_ID_PATTERN,
    CacheFlush,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    FeedbackReceipt,
    FeedbackRequest,
    FlushRequest,
    Health,
    SessionDeletion,
    UsageReport,
    UserDeletion,
)
from concierge.models.identity import User
from concierge.observability import logger, record_response

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import (
        OpenAPIResponse,
        OpenAPIResponseHeader,
    )
    from aws_lambda_powertools.utilities.typing import LambdaContext

API_TITLE = "Concierge"
# The version of the HTTP contract (not of the package): change it when the contract changes.
API_VERSION = "2"
BEARER = "bearerAuth"


class Access(Enum):
    ANYONE = "anyone"
    SIGNED_IN = "signed in"
    ADMIN = "admin"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # Powertools' form: /sessions/<session_id>
    access: Access
    json_body: bool = False

    @property
    def prefix(self) -> str:
        return self.path.split("<", 1)[0]

    def matches(self, method: str, path: str) -> bool:
        if method != self.method:
            return False
        if "<" not in self.path:
            return path == self.path
        rest = path.removeprefix(self.prefix)
        return path.startswith(self.prefix) and bool(rest) and "/" not in rest


CHAT = Route("POST", "/chat", Access.SIGNED_IN, json_body=True)
FEEDBACK = Route("POST", "/feedback", Access.SIGNED_IN, json_body=True)
SESSION = Route("DELETE", "/sessions/<session_id>", Access.SIGNED_IN)
USAGE = Route("GET", "/me/usage", Access.SIGNED_IN)
USER = Route("DELETE", "/users/<user_id>", Access.ADMIN)
FLUSH = Route("POST", "/admin/cache/flush", Access.ADMIN, json_body=True)
HEALTH = Route("GET", "/health", Access.ANYONE)
ROUTES = (CHAT, FEEDBACK, SESSION, USAGE, USER, FLUSH, HEALTH)

_SIGN_IN = "`unauthorized`: no valid bearer token (in AWS, API Gateway answers this one itself)"
_ADMINS_ONLY = "`forbidden`: the caller is not an administrator"
_MISCONFIGURED_OR_INTERNAL = "`misconfigured`, or `internal_error` (never with a stack trace)"
_STORE = "`store_unavailable`: the tables cannot be reached now; retry"
_REQUEST_ID_HEADER: dict[str, OpenAPIResponseHeader] = {
    "x-request-id": {
        "description": "The request id, also in error bodies and in every log line of the request",
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER_HEADER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {
        "description": "Seconds until the budget is renewed (midnight UTC)",
        "schema": {"type": "integer"},
    }
}


class HttpApi(APIGatewayHttpResolver):
    """Powertools' resolver with validation on, and the contract's frame around each request.

    `resolve` checks the caller and reads a JSON body strictly before the validation
    middleware parses it (the middleware runs first in Powertools' stack, so no middleware
    can), adds `x-request-id` to every response and counts it. It also resolves one request
    at a time: the resolver keeps the current event on its class and the request's state in
    `self.context`, so it must not serve two threads at once (Lambda never asks it to; the
    local server does).
    """

    def __init__(self, services: Callable[[], ApiServices]) -> None:
        super().__init__(
            enable_validation=True,
            # Never Powertools' debug answers (a 500 with the traceback in its body).
            debug=False,
            serializer=partial(json.dumps, ensure_ascii=False),
            json_body_deserializer=json_object,
        )
        self._services = services
        self._one_at_a_time = threading.Lock()

    def services(self) -> ApiServices:
        """What the routes need, built on first use; a missing setting is a 500 misconfigured."""
        try:
            return self._services()
        except ConfigurationError:
            logger.exception("the api function is misconfigured")
            raise MISCONFIGURED.error() from None

    @property
    def request_id(self) -> str:
        """The current request's id (inside a route or an exception handler)."""
        return str(self.context["request_id"])

    @property
    def user(self) -> User:
        """The caller of a route for signed-in users (checked before the route runs)."""
        user: User = self.context["user"]
        return user

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        request = request_id(event)
        with self._one_at_a_time:
            try:
                # Both are cleared by super().resolve().
                self.context["request_id"] = request
                self.context["user"] = None
                event = self._admit(event)
                response = super().resolve(event, context)
            except ApiError as error:  # refused before the routes
                response = error.failure.bare_response(request)
            except Exception as error:  # a malformed event, or a handler that failed itself
                log_unexpected(error)
                response = INTERNAL.bare_response(request)
        response["headers"] = {**(response.get("headers") or {}), "x-request-id": request}
        record_response(int(response["statusCode"]))
        return response

    def _admit(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """The caller and the body, checked in API Gateway's order: who, then what."""
        route = next((r for r in ROUTES if r.matches(*method_and_path(event))), None)
        if route is None or route.access is Access.ANYONE:
            return event
        settings = self.services().settings
        user = caller(event, settings.admin_claim, settings.admin_group)
        if user is None:
            raise UNAUTHORIZED.error()
        if route.access is Access.ADMIN and not user.admin:
            raise FORBIDDEN.error()
        self.context["user"] = user
        return with_text_body(event, settings.max_body_bytes) if route.json_body else event


def create_app(services: Callable[[], ApiServices]) -> APIGatewayHttpResolver:
    """The HTTP API; `services` is called by the routes that need it, not before."""
    app = HttpApi(services)
    signed_in: list[dict[str, list[str]]] = [{BEARER: []}]

    @app.post(
        CHAT.path,
        operation_id="chat",
        summary="Answer a question from the knowledge base",
        description=(
            "Runs the chain: history, cache, classify or condense, retrieve, answer. Without a"
            " `session_id` a new session is issued; with one, the turn is added to that session"
            " of the caller's (a session id names a session only within its user's space) and a"
            " follow-up is understood against it. `bypass_cache` and `Cache-Control: no-cache`"
            " are honoured for administrators only."
        ),
        security=signed_in,
        responses=_responses(
            "The answer, its citations and what it cost",
            {
                400: "`invalid_json`: the body is not one UTF-8 JSON object;"
                " `invalid_request`: a field is missing or invalid",
                401: _SIGN_IN,
                413: "`payload_too_large`: the body is larger than 64 KiB",
                429: "`budget_exceeded`: the caller's daily budget is spent; see Retry-After",
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
            Header(
                description="`no-cache` answers as if there were no cache, as `bypass_cache`"
                " (administrators only; ignored for other users)"
            ),
        ] = None,
    ) -> ChatResponse:
        asked = request.bypass_cache or "no-cache" in (cache_control or "").lower()
        return run_chat(
            request,
            app.request_id,
            app.user,
            app.services(),
            bypass_cache=asked and app.user.admin,
            # API Gateway always stamps it; a hand-made event may not.
            received_ms=app.current_event.request_context.get("timeEpoch"),
        )

    @app.post(
        FEEDBACK.path,
        operation_id="rateAnswer",
        summary="Rate one of the caller's answers, up or down, once",
        description=(
            "`request_id` names the answer (the `request_id` of its POST /chat response). Only"
            " the user who asked may rate it, once: the answer is looked up in the caller's own"
            " history, so another user's answer, one never stored (a question a safety layer"
            " refused, a failed request) and one whose session was deleted or whose turn has"
            " expired are not found. The rating keeps the A/B variant, prompt versions, model,"
            " category and language of the answer, and the comment (personal data masked where"
            " the stack redacts it); it is erased with the session and with the user."
        ),
        security=signed_in,
        status_code=201,
        responses=_responses(
            "The rating was stored; the variant that served the rated answer",
            {
                400: "`invalid_json`: the body is not one UTF-8 JSON object;"
                " `invalid_request`: not a request id, a rating other than `up` or `down`, or"
                " a comment over 1000 characters",
                401: _SIGN_IN,
                404: "`not_found`: the caller has no such answer to rate",
                409: "`conflict`: the caller has rated this answer already",
                413: "`payload_too_large`: the body is larger than 64 KiB",
                500: _MISCONFIGURED_OR_INTERNAL,
                503: _STORE,
            },
            success=201,
        ),
    )
    def rate(
        request: Annotated[
            FeedbackRequest,
            Body(description="A UTF-8 JSON object of at most 64 KiB; other fields are ignored"),
        ],
    ) -> FeedbackReceipt:
        return rate_answer(request, app.user, app.services())

    @app.delete(
        SESSION.path,
        operation_id="deleteSession",
        summary="Forget one of the caller's sessions",
        description=(
            "Deletes the session's turns, the cache entries its questions produced (an entry"
            " someone else has since replaced is left alone) and the caller's ratings of its"
            " answers. 404 when the caller has no such session — another user's session of the"
            " same name included."
        ),
        security=signed_in,
        responses=_responses(
            "What was deleted",
            {
                400: "`invalid_request`: not a session id",
                401: _SIGN_IN,
                404: "`not_found`: the caller has no such session",
                500: _MISCONFIGURED_OR_INTERNAL,
                503: _STORE,
            },
        ),
    )
    def delete_session(
        session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="The session")],
    ) -> SessionDeletion:
        return accounts.forget_session(app.user, session_id, app.services())

    @app.get(
        USAGE.path,
        operation_id="myUsage",
        summary="What the caller spent today (UTC), and their daily limits",
        security=signed_in,
        responses=_responses(
            "Today's use and the limits (null: no limit)",
            {401: _SIGN_IN, 500: _MISCONFIGURED_OR_INTERNAL, 503: _STORE},
        ),
    )
    def my_usage() -> UsageReport:
        return accounts.usage_of(app.user, app.services())

    @app.delete(
        USER.path,
        operation_id="deleteUser",
        summary="Erase everything stored for a user (administrators)",
        description=(
            "Their history, the cache entries their questions produced (never someone else's"
            " newer entry under the same key) with their vectors, their budgets and their"
            " ratings of answers."
        ),
        security=signed_in,
        responses=_responses(
            "What was erased (zeros when there was nothing)",
            {
                400: "`invalid_request`: not a user id",
                401: _SIGN_IN,
                403: _ADMINS_ONLY,
                500: _MISCONFIGURED_OR_INTERNAL,
                503: _STORE,
            },
        ),
    )
    def delete_user(
        user_id: Annotated[
            str, Path(pattern=USER_ID_PATTERN, description="The user's `sub` claim")
        ],
    ) -> UserDeletion:
        return accounts.erase_user(user_id, app.services())

    @app.post(
        FLUSH.path,
        operation_id="flushCache",
        summary="Delete cached answers: all, or one knowledge-base version's (administrators)",
        security=signed_in,
        responses=_responses(
            "How many entries went",
            {
                400: '`invalid_json` or `invalid_request`: not `{"all": true}` or'
                ' `{"kb_version": "…"}`',
                401: _SIGN_IN,
                403: _ADMINS_ONLY,
                500: _MISCONFIGURED_OR_INTERNAL,
                503: _STORE,
            },
        ),
    )
    def flush_cache(request: Annotated[FlushRequest, Body()]) -> CacheFlush:
        return accounts.flush_cache(request, app.services())

    @app.get(
        HEALTH.path,
        operation_id="health",
        summary="Whether the function can answer (no sign-in)",
        responses=_responses("Up", {500: _MISCONFIGURED_OR_INTERNAL}),
    )
    def health() -> Health:
        app.services()
        return Health()

    def no_route(_: NotFoundError) -> Response[dict[str, Any]]:
        request = app.current_event
        return _no_route(request.http_method.upper(), request.path).response(app.request_id)

    def invalid(error: RequestValidationError) -> Response[dict[str, Any]]:
        return _invalid(error).response(app.request_id)

    def refused(error: ApiError) -> Response[dict[str, Any]]:
        return error.failure.response(app.request_id)

    def unexpected(error: Exception) -> Response[dict[str, Any]]:
        # The last line of defence: whatever broke, the client gets the contract's error shape.
        log_unexpected(error)
        return INTERNAL.response(app.request_id)

    app.not_found(no_route)
    app.exception_handler(RequestValidationError)(invalid)
    app.exception_handler(ApiError)(refused)
    app.exception_handler(Exception)(unexpected)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API, generated from `create_app`'s routes."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schema = create_app(_no_services).get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "A RAG chat backend: answers questions about an organisation's documents, in the"
            " user's language, with citations. Every route but `GET /health` needs a bearer"
            " token (a JWT of the stack's Cognito user pool or configured issuer); group"
            " `admin` unlocks the administrators' routes. Every error is"
            ' `{"error": {"code", "message", "request_id"}}`.'
        ),
        security_schemes={BEARER: HTTPBearer(bearerFormat="JWT")},
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


def _responses(
    answer: str, failures: Mapping[int, str], success: int = 200
) -> dict[int, OpenAPIResponse]:
    """A route's documented responses: its success (the route's return model, a 200 unless
    said otherwise) and its errors."""
    documented: dict[int, OpenAPIResponse] = {
        success: {"description": answer, "headers": _REQUEST_ID_HEADER}
    }
    for status, description in failures.items():
        headers = {**_REQUEST_ID_HEADER, **(_RETRY_AFTER_HEADER if status == 429 else {})}
        documented[status] = {
            "description": description,
            "headers": headers,
            "content": {JSON: {"model": ErrorResponse}},
        }
    return documented


def _no_route(method: str, path: str) -> Failure:
    """No route matched: a known path with another method is a 405, the rest a 404."""
    for route in ROUTES:
        if route.path == path or ("<" in route.path and path.startswith(route.prefix)):
            if method == route.method:  # a parameter the route's pattern cannot match
                name = route.path.split("<", 1)[1].rstrip(">")
                return failure(400, "invalid_request", f"{name}: must match {_pattern(name)}")
            shown = route.path.replace("<", "{").replace(">", "}")
            return failure(405, "method_not_allowed", f"Use {route.method} {shown}.")
    return failure(404, "not_found", f"No route for {path or '/'}.")


def _pattern(name: str) -> str:
    return {"session_id": SESSION_ID_PATTERN, "user_id": USER_ID_PATTERN}[name]


def _invalid(error: RequestValidationError) -> Failure:
    """Powertools' validation error as the contract's 400, naming the first wrong field."""
    errors = list(error.errors()) or [{"loc": ("body",), "msg": "invalid", "type": ""}]
    first = errors[0]
    where, *field = first["loc"]
    if where == "response":  # a route's own answer broke its model: a bug, not a bad request
        logger.error("a response does not match its model", extra={"error": first["type"]})
        return INTERNAL
    name = ".".join(str(part) for part in field) or str(where)
    if where == "path" and first["type"] == "string_pattern_mismatch":
        return failure(400, "invalid_request", f"{name}: must match {first['ctx']['pattern']}")
    return failure(400, "invalid_request", f"{name}: {first['msg']}")
