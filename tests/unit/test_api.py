"""The HTTP edge (concierge.api) through `create_app`, with a fake chain and fake tables: every
status, error code and header of the public contract."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest

from concierge import api
from concierge.adapters.executor import ExecutionResult
from concierge.api import ApiServices, create_app
from concierge.config import ApiSettings
from concierge.errors import ConfigurationError, StoreUnavailableError
from concierge.models.http import SessionDeletion

REQUEST_ID = "abc=123"
SAFE_REQUEST_ID = "abc123"  # what the edge makes of it: execution names allow [A-Za-z0-9_-]
SETTINGS = ApiSettings(state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:chat")
ANSWERED: dict[str, Any] = {
    "status": "answered",
    "answer": "We sell tents. [1]",
    "citations": [{"source": "a.md", "title": "A", "snippet": "We sell tents."}],
    "category": "products",
    "language": "en",
    "usage": [
        {
            "step": "classify",
            "model": "m",
            "llm_calls": 1,
            "input_tokens": 100,
            "output_tokens": 10,
            "cost_usd": 0.001,
        },
        None,
        {
            "step": "answer",
            "model": "m",
            "llm_calls": 1,
            "input_tokens": 300,
            "output_tokens": 50,
            "cost_usd": 0.002,
        },
    ],
}
CHAT_KEYS = {
    "answer",
    "citations",
    "category",
    "language",
    "cached",
    "session_id",
    "request_id",
    "usage",
}


class FakeExecutor:
    """Answers every execution with one result, and remembers what it was asked."""

    def __init__(self, result: ExecutionResult | None = None) -> None:
        self.result = result or ExecutionResult(status="SUCCEEDED", output=ANSWERED)
        self.payloads: list[dict[str, Any]] = []
        self.timeouts: list[float] = []

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        self.payloads.append(payload)
        self.timeouts.append(timeout_s)
        return self.result


@dataclass
class FakeSessions:
    failure: Exception | None = None
    deleted: list[str] = field(default_factory=list)

    def delete_session(self, session_id: str) -> SessionDeletion:
        if self.failure is not None:
            raise self.failure
        self.deleted.append(session_id)
        return SessionDeletion(session_id=session_id, turns=2, cache_entries=1)


@dataclass
class Edge:
    """The app under test and its doubles."""

    executor: FakeExecutor = field(default_factory=FakeExecutor)
    sessions: FakeSessions | None = field(default_factory=FakeSessions)
    settings: ApiSettings = SETTINGS

    def services(self) -> ApiServices:
        return ApiServices(
            settings=self.settings,
            cache_scope="scope",
            executor=self.executor,
            sessions=self.sessions,
        )

    def call(self, event: dict[str, Any]) -> Reply:
        response = create_app(self.services).resolve(event, None)  # type: ignore[arg-type]
        return Reply(response)


@dataclass
class Reply:
    response: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.response["statusCode"])

    @property
    def headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.response["headers"].items()}

    def json(self) -> Any:
        return json.loads(self.response["body"])

    @property
    def error(self) -> dict[str, str]:
        body = self.json()
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "request_id"}
        return dict(body["error"])


def event(
    method: str,
    path: str,
    body: str | None = None,
    *,
    base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    request_id: str | None = REQUEST_ID,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event."""
    context: dict[str, Any] = {
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1"},
        "stage": "$default",
    }
    if request_id is not None:
        context["requestId"] = request_id
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": context,
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def chat(document: Any, **kwargs: Any) -> dict[str, Any]:
    return event("POST", "/chat", json.dumps(document), **kwargs)


def encoded(data: bytes, **kwargs: Any) -> dict[str, Any]:
    """A POST /chat whose body API Gateway passed base64-encoded (not UTF-8 text)."""
    return event("POST", "/chat", base64.b64encode(data).decode("ascii"), base64_encoded=True)


@pytest.fixture
def edge() -> Edge:
    return Edge()


@pytest.fixture
def counted() -> Iterator[dict[str, mock.MagicMock]]:
    with (
        mock.patch("concierge.api.record_response") as response,
        mock.patch("concierge.api.record_cache_outcome") as cache,
        mock.patch("concierge.api.record_degraded") as degraded,
    ):
        yield {"response": response, "cache": cache, "degraded": degraded}


# -- POST /chat: an answer ------------------------------------------------------------------
def test_an_answer_is_mapped_to_the_public_contract(edge: Edge) -> None:
    # When a question is asked in a session
    reply = edge.call(chat({"question": "What do you sell?", "session_id": "s-1"}))

    # Then the answer has exactly the public fields, and the chain got the question
    assert reply.status == 200
    body = reply.json()
    assert set(body) == CHAT_KEYS
    assert body["session_id"] == "s-1"
    assert body["request_id"] == SAFE_REQUEST_ID
    assert body["cached"] is False
    assert body["citations"] == ANSWERED["citations"]
    assert body["usage"] == {
        "llm_calls": 2,
        "input_tokens": 400,
        "output_tokens": 60,
        "cost_usd": 0.003,
    }
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert reply.headers["content-type"] == "application/json"
    assert edge.executor.payloads[0]["question"] == "What do you sell?"


def test_a_new_session_id_is_issued_when_none_is_given(edge: Edge) -> None:
    # When a question comes without a session id (or with a null one)
    first = edge.call(chat({"question": "Hi?"})).json()
    second = edge.call(chat({"question": "Hi?", "session_id": None})).json()

    # Then each answer names a new session
    assert len(first["session_id"]) >= 16
    assert first["session_id"] != second["session_id"]


def test_the_chain_input_carries_a_deadline_inside_the_budget(edge: Edge) -> None:
    # Given the request budget of the settings (27 s by default)
    budget_ms = SETTINGS.request_budget_ms

    # When a question is asked
    before_ms = time.time() * 1000
    edge.call(chat({"question": "q"}))
    after_ms = time.time() * 1000

    # Then the chain's deadline is the budget from the moment the request arrived, and the
    # execution is waited for no longer than that budget and a second to answer
    payload = edge.executor.payloads[0]
    assert before_ms + budget_ms - 1 <= payload["deadline_ms"] <= after_ms + budget_ms
    assert edge.executor.timeouts == [budget_ms / 1000 + 1]
    # And the turn's key sorts by time and names the request; "now" is 10-digit epoch seconds
    assert payload["turn_key"].endswith("#" + SAFE_REQUEST_ID)
    assert before_ms // 1000 <= int(payload["now_epoch_seconds"]) <= after_ms // 1000
    assert len(payload["now_epoch_seconds"]) == 10


def test_a_request_without_an_id_gets_one_in_the_body_and_the_header(edge: Edge) -> None:
    # When API Gateway's request id is missing (or nothing of it is safe)
    for request_id in (None, "=/="):
        reply = edge.call(chat({"question": "q"}, request_id=request_id))

        # Then one is made up, the same in the body and in x-request-id
        assert reply.json()["request_id"] == reply.headers["x-request-id"]
        assert len(reply.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"],
)
def test_the_body_is_read_as_json_whatever_its_declared_type(edge: Edge, content_type: str) -> None:
    # Given a JSON body declared as something else (`curl -d` says form-urlencoded)
    request = chat({"question": "What do you sell?"}, headers={"content-type": content_type})

    # When it is posted
    reply = edge.call(request)

    # Then it is answered as JSON, as it always was
    assert reply.status == 200
    assert edge.executor.payloads[0]["question"] == "What do you sell?"


def test_a_base64_encoded_utf8_body_is_read(edge: Edge) -> None:
    # When API Gateway passes a valid UTF-8 JSON body base64-encoded
    reply = edge.call(encoded(json.dumps({"question": "¿Qué vendéis?"}).encode("utf-8")))

    # Then it is answered
    assert reply.status == 200
    assert edge.executor.payloads[0]["question"] == "¿Qué vendéis?"


@pytest.mark.parametrize(
    ("document", "headers", "bypassed"),
    [
        ({"question": "q"}, {}, False),
        ({"question": "q", "bypass_cache": True}, {}, True),
        ({"question": "q"}, {"cache-control": "no-cache"}, True),
        ({"question": "q"}, {"Cache-Control": "No-Cache, no-store"}, True),
        ({"question": "q"}, {"cache-control": "max-age=0"}, False),
    ],
)
def test_the_cache_is_bypassed_on_request(
    edge: Edge,
    counted: dict[str, mock.MagicMock],
    document: dict[str, Any],
    headers: dict[str, str],
    bypassed: bool,
) -> None:
    # When a question asks (or not) to bypass the cache, in its body or with Cache-Control
    edge.call(chat(document, headers=headers))

    # Then the chain is told, and the outcome counted as a bypass
    assert edge.executor.payloads[0]["cache_bypass"] is bypassed
    assert counted["cache"].call_args.kwargs["bypassed"] is bypassed


def test_a_cached_and_degraded_answer_is_counted(
    edge: Edge, counted: dict[str, mock.MagicMock]
) -> None:
    # Given a chain that answers from the cache with the history store down
    degraded = {"history_read": {"Error": "DynamoDB.ProvisionedThroughputExceededException"}}
    edge.executor.result = ExecutionResult(
        status="SUCCEEDED", output={**ANSWERED, "status": "cached", "degraded": degraded}
    )

    # When a question is asked
    reply = edge.call(chat({"question": "q"}))

    # Then it is answered as cached, and the hit, the degraded store and the 200 are counted
    assert reply.json()["cached"] is True
    assert counted["cache"].call_args.kwargs["hit"] is True
    counted["degraded"].assert_called_once_with(degraded)
    counted["response"].assert_called_once_with(200)


# -- POST /chat: bad input ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", "invalid_json"),
        ("", "invalid_json"),
        (None, "invalid_json"),
        ("   ", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('[{"question": "first of a list"}]', "invalid_json"),
        ('"question"', "invalid_json"),
        ("null", "invalid_json"),
        ("{}", "invalid_request"),
        ('{"question": ""}', "invalid_request"),
        ('{"question": 42}', "invalid_request"),
        ('{"question": null}', "invalid_request"),
        ('{"question": ["a"]}', "invalid_request"),
        (json.dumps({"question": "x" * 4001}), "invalid_request"),
        ('{"question": "ok", "session_id": ""}', "invalid_request"),
        ('{"question": "ok", "session_id": "has space"}', "invalid_request"),
        ('{"question": "ok", "session_id": "abc\\n"}', "invalid_request"),
        (json.dumps({"question": "ok", "session_id": "s" * 129}), "invalid_request"),
        ('{"question": "ok", "session_id": 7}', "invalid_request"),
        ('{"question": "ok", "bypass_cache": "yes"}', "invalid_request"),
    ],
)
def test_bad_input_is_a_400_and_starts_no_execution(
    edge: Edge, counted: dict[str, mock.MagicMock], body: str | None, code: str
) -> None:
    # When a malformed request is posted
    reply = edge.call(event("POST", "/chat", body))

    # Then it is a 400 in the error shape, with its code, and the chain never ran
    assert reply.status == 400
    assert reply.error["code"] == code
    assert reply.error["request_id"] == reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert edge.executor.payloads == []
    counted["response"].assert_called_once_with(400)


def test_a_bad_field_is_named_in_the_message(edge: Edge) -> None:
    # When the question is missing, then when it is too long
    missing = edge.call(chat({"session_id": "abc"})).error
    too_long = edge.call(chat({"question": "x" * 4001})).error

    # Then each message names the field and what is wrong with it
    assert missing["message"] == "question: Field required"
    assert too_long["message"].startswith("question: String should have at most 4000")


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"question": "What do you sell?"}).encode("utf-16"),
        json.dumps({"question": "What do you sell?"}).encode("utf-32"),
        '{"question": "¿Qué vendéis?"}'.encode("latin-1"),
        b'{"question": "What do you sell\xff\xfe?"}',
    ],
    ids=["utf-16", "utf-32", "latin-1", "invalid-bytes"],
)
def test_a_body_that_is_not_utf8_is_refused(edge: Edge, data: bytes) -> None:
    # When a JSON body in another encoding is posted
    reply = edge.call(encoded(data))

    # Then it is not JSON for this API
    assert reply.status == 400
    assert reply.error["code"] == "invalid_json"
    assert edge.executor.payloads == []


def test_a_body_that_is_not_valid_base64_is_refused(edge: Edge) -> None:
    # When a body said to be base64 is not
    reply = edge.call(event("POST", "/chat", "eyJxdWVzdGlvbiI6ICJxIn0$", base64_encoded=True))

    # Then it is a 400, and nothing ran
    assert reply.status == 400
    assert reply.error["code"] == "invalid_json"
    assert edge.executor.payloads == []


def test_a_text_body_with_a_lone_surrogate_is_refused(edge: Edge) -> None:
    # When a text body holds what no UTF-8 text can (a lone surrogate)
    reply = edge.call(event("POST", "/chat", '{"question": "\ud800"}'))

    # Then it is a 400, not a crash
    assert reply.status == 400
    assert reply.error["code"] == "invalid_json"


def test_deeply_nested_json_is_a_400_not_a_crash(edge: Edge) -> None:
    # When a body nests deeper than any parser's stack
    reply = edge.call(event("POST", "/chat", "[" * 30_000 + "]" * 30_000))

    # Then it is refused as JSON it cannot read
    assert reply.status == 400
    assert reply.error["code"] == "invalid_json"
    assert edge.executor.payloads == []


# -- POST /chat: the size limit ------------------------------------------------------------
def test_a_body_over_64_kb_is_a_413(edge: Edge) -> None:
    # When a valid request larger than 64 KiB is posted
    reply = edge.call(chat({"question": "x" * 70_000}))

    # Then it is too large, and nothing ran
    assert reply.status == 413
    assert reply.error["code"] == "payload_too_large"
    assert edge.executor.payloads == []


def test_the_limit_is_on_the_decoded_bytes_and_comes_from_the_settings() -> None:
    # Given a limit of 100 bytes
    edge = Edge(settings=SETTINGS.model_copy(update={"max_body_bytes": 100}))
    head = '{"question": "q", "padding": "'
    exactly = head + "x" * (100 - len(head) - 2) + '"}'
    # 34 characters of 3 bytes each: fewer than 100 characters, more than 100 bytes
    multibyte = head + "€" * 34 + '"}'

    # When bodies of exactly the limit, over it in bytes, and over it once base64-decoded come
    at_limit = edge.call(event("POST", "/chat", exactly))
    over_in_bytes = edge.call(event("POST", "/chat", multibyte))
    over_decoded = edge.call(encoded((exactly[:-2] + 'x"}').encode("utf-8")))

    # Then the limit is measured on the body's decoded bytes
    assert len(multibyte) < 100 < len(multibyte.encode("utf-8"))
    assert at_limit.status == 200
    assert over_in_bytes.status == 413
    assert over_decoded.status == 413


def test_a_body_over_the_limit_is_a_413_even_when_it_is_not_json() -> None:
    # Given a limit of 100 bytes
    edge = Edge(settings=SETTINGS.model_copy(update={"max_body_bytes": 100}))

    # When 200 bytes of something that is not JSON are posted
    reply = edge.call(event("POST", "/chat", "{" * 200))

    # Then the size is what is refused: it is checked before anything is parsed
    assert reply.status == 413


# -- POST /chat: a failed chain -----------------------------------------------------------
@pytest.mark.parametrize(
    ("result", "status", "code"),
    [
        (
            ExecutionResult(
                status="SUCCEEDED",
                output={"status": "failed", "error": "ModelThrottledError", "cause": "x"},
            ),
            503,
            "model_unavailable",
        ),
        (
            ExecutionResult(
                status="SUCCEEDED",
                output={"status": "failed", "error": "ModelInvocationError", "cause": "x"},
            ),
            502,
            "model_error",
        ),
        (
            ExecutionResult(
                status="SUCCEEDED", output={"status": "failed", "error": "IndexNotFoundError"}
            ),
            503,
            "knowledge_base_unavailable",
        ),
        (
            ExecutionResult(
                status="SUCCEEDED", output={"status": "failed", "error": "States.Timeout"}
            ),
            504,
            "timeout",
        ),
        (
            ExecutionResult(
                status="SUCCEEDED", output={"status": "failed", "error": "BudgetExceededError"}
            ),
            504,
            "timeout",
        ),
        (
            ExecutionResult(
                status="SUCCEEDED",
                output={"status": "failed", "error": "KeyError", "cause": "Traceback ..."},
            ),
            500,
            "internal_error",
        ),
        (ExecutionResult(status="TIMED_OUT"), 504, "timeout"),
        (
            ExecutionResult(status="FAILED", error="Lambda.TooManyRequestsException"),
            503,
            "busy",
        ),
        (
            ExecutionResult(status="FAILED", error="States.Runtime", cause="boom"),
            500,
            "internal_error",
        ),
    ],
)
def test_a_failed_chain_is_a_clear_error_without_internals(
    edge: Edge,
    counted: dict[str, mock.MagicMock],
    result: ExecutionResult,
    status: int,
    code: str,
) -> None:
    # Given a chain that fails this way
    edge.executor.result = result

    # When a question is asked
    reply = edge.call(chat({"question": "q"}))

    # Then the failure is the contract's status and code, without its cause
    assert reply.status == status
    assert reply.error["code"] == code
    assert reply.error["request_id"] == reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert "Traceback" not in reply.response["body"]
    assert "boom" not in reply.response["body"]
    counted["response"].assert_called_once_with(status)


def test_an_unexpected_error_still_answers_in_the_error_shape(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Powertools' development mode (whose errors would show a traceback) and a chain
    # client that breaks with a message quoting the question
    monkeypatch.setenv("POWERTOOLS_DEV", "true")

    class BrokenExecutor(FakeExecutor):
        def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
            raise RuntimeError(f"connection reset while asking {payload['question']}")

    edge = Edge(executor=BrokenExecutor())

    # When a question is asked
    reply = edge.call(chat({"question": "my secret question"}))

    # Then it is a 500 in the error shape, and neither the reply nor the logs quote the question
    assert reply.status == 500
    assert reply.error["code"] == "internal_error"
    assert "connection reset" not in reply.response["body"]
    assert "Traceback" not in reply.response["body"]
    logged = _logged(caplog)
    assert "RuntimeError" in logged
    assert "my secret question" not in logged


def test_logs_never_hold_the_question_or_the_answer(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a chain answering with a degraded store
    edge.executor.result = ExecutionResult(
        status="SUCCEEDED",
        output={**ANSWERED, "degraded": {"cache_write": {"Error": "X", "Cause": "tents"}}},
    )

    # When a question is asked, and then a bad one
    edge.call(chat({"question": "What do you sell?", "session_id": "s-1"}))
    edge.call(chat({"question": "What do you sell?", "session_id": "not valid"}))

    # Then what was logged quotes neither the question nor the answer
    logged = _logged(caplog)
    assert "answered with a degraded store" in logged
    assert "What do you sell" not in logged
    assert "tents" not in logged


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message and extra fields, as one text."""
    return "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)


# -- misconfiguration ---------------------------------------------------------------------
def test_building_the_app_and_its_document_asks_for_no_services() -> None:
    # Given a provider that records each call
    calls: list[str] = []

    def services() -> ApiServices:
        calls.append("called")
        raise ConfigurationError("CONCIERGE_STATE_MACHINE_ARN is not set")

    # When the app is built and the OpenAPI document generated
    create_app(services)
    api.openapi_document()

    # Then no settings were needed
    assert calls == []


@pytest.mark.parametrize(
    "request_event",
    [
        chat({"question": "q"}),
        event("GET", "/health"),
        event("DELETE", "/sessions/alice"),
    ],
    ids=["chat", "health", "delete-session"],
)
def test_a_missing_setting_is_a_500_misconfigured(request_event: dict[str, Any]) -> None:
    # Given services that cannot be built
    def services() -> ApiServices:
        raise ConfigurationError("CONCIERGE_STATE_MACHINE_ARN is not set")

    # When a route that needs them is called
    reply = Reply(create_app(services).resolve(request_event, None))  # type: ignore[arg-type]

    # Then it is a 500 misconfigured, without the setting's name
    assert reply.status == 500
    assert reply.error["code"] == "misconfigured"
    assert "CONCIERGE" not in reply.response["body"]
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID


# -- DELETE /sessions/{session_id} ----------------------------------------------------------
def test_deleting_a_session_says_what_was_deleted(edge: Edge) -> None:
    # When a session is deleted
    reply = edge.call(event("DELETE", "/sessions/alice-1_b"))

    # Then its turns and cache entries were deleted, and counted in the answer
    assert reply.status == 200
    assert reply.json() == {"session_id": "alice-1_b", "turns": 2, "cache_entries": 1}
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert edge.sessions is not None
    assert edge.sessions.deleted == ["alice-1_b"]


@pytest.mark.parametrize(
    "path",
    ["/sessions/has%20space", "/sessions/a/b", "/sessions/", "/sessions/" + "s" * 129],
)
def test_deleting_a_bad_session_id_is_a_400(edge: Edge, path: str) -> None:
    # When something that is not a session id is deleted
    reply = edge.call(event("DELETE", path))

    # Then it is a 400 naming the rule, and nothing was deleted
    assert reply.status == 400
    assert reply.error == {
        "code": "invalid_request",
        "message": "session_id: must match ^[A-Za-z0-9_-]{1,128}$",
        "request_id": SAFE_REQUEST_ID,
    }
    assert edge.sessions is not None
    assert edge.sessions.deleted == []


def test_deleting_without_tables_is_a_500_misconfigured() -> None:
    # Given an api function whose tables are not configured
    edge = Edge(sessions=None)

    # When a session is deleted
    reply = edge.call(event("DELETE", "/sessions/alice"))

    # Then it is a 500 misconfigured
    assert reply.status == 500
    assert reply.error["code"] == "misconfigured"


def test_deleting_while_the_tables_fail_is_a_503() -> None:
    # Given tables that cannot be reached
    edge = Edge(sessions=FakeSessions(failure=StoreUnavailableError("throttled")))

    # When a session is deleted
    reply = edge.call(event("DELETE", "/sessions/alice"))

    # Then it is a 503 the client may retry
    assert reply.status == 503
    assert reply.error["code"] == "store_unavailable"


# -- other routes -------------------------------------------------------------------------
def test_health_is_a_200(edge: Edge) -> None:
    # When the health route is called
    reply = edge.call(event("GET", "/health"))

    # Then it is up
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/", 404, "not_found"),
        ("POST", "/chats", 404, "not_found"),
        ("POST", "/chat/", 404, "not_found"),
        ("GET", "/chat", 405, "method_not_allowed"),
        ("PUT", "/chat", 405, "method_not_allowed"),
        ("OPTIONS", "/chat", 405, "method_not_allowed"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("GET", "/sessions/alice", 405, "method_not_allowed"),
        ("POST", "/sessions/a/b", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_and_wrong_methods(
    edge: Edge, method: str, path: str, status: int, code: str
) -> None:
    # When a path that is not a route, or a route with another method, is called with a body
    reply = edge.call(event(method, path, "not json"))

    # Then it is a 404 or a 405 in the error shape, and nothing ran
    assert reply.status == status
    assert reply.error["code"] == code
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert edge.executor.payloads == []


# -- one request at a time ----------------------------------------------------------------
def test_concurrent_requests_each_get_their_own_answer() -> None:
    # Given one app, and a chain that echoes each question after a pause
    class EchoExecutor(FakeExecutor):
        def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
            time.sleep(0.005)
            return ExecutionResult(
                status="SUCCEEDED", output={**ANSWERED, "answer": payload["question"]}
            )

    edge = Edge(executor=EchoExecutor())
    app = create_app(edge.services)
    answers: dict[str, Any] = {}
    start = threading.Barrier(16)

    def ask(question: str) -> Callable[[], None]:
        def run() -> None:
            request = chat({"question": question}, request_id=f"id-{question}")
            start.wait()
            answers[question] = Reply(app.resolve(request, None))  # type: ignore[arg-type]

        return run

    # When threads ask through it at once, as the local server's do
    threads = [threading.Thread(target=ask(f"q{n}")) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every request got its own answer and its own id
    for question, reply in answers.items():
        assert reply.status == 200, reply.response["body"]
        assert reply.json()["answer"] == question
        assert reply.headers["x-request-id"] == f"id-{question}"
    assert len(answers) == 16
