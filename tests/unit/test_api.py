"""The HTTP edge (concierge.api) through `create_app`, with a fake chain and fake tables: every
status, error code and header of the public contract."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from unittest import mock

import pytest

from concierge import api
from concierge.adapters.dynamodb.budgets import Spend
from concierge.adapters.dynamodb.feedback import AnsweredTurn, Rating
from concierge.adapters.executor import ExecutionResult
from concierge.api import ApiServices, BudgetPolicy, create_app
from concierge.api.services import Experiments
from concierge.config import ApiSettings
from concierge.errors import ConfigurationError, StoreUnavailableError
from concierge.experiments import experiment
from concierge.models.http import CacheFlush, SessionDeletion, UserDeletion

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
    "variant",
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
    """Users' stored data: every session has two turns and a cache entry, unless it is in
    `missing`."""

    failure: Exception | None = None
    missing: set[str] = field(default_factory=set)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    flushed: list[str | None] = field(default_factory=list)

    def delete_session(self, user_id: str, session_id: str) -> SessionDeletion:
        if self.failure is not None:
            raise self.failure
        self.deleted.append((user_id, session_id))
        if session_id in self.missing:
            return SessionDeletion(session_id=session_id, turns=0, cache_entries=0)
        return SessionDeletion(session_id=session_id, turns=2, cache_entries=1)

    def delete_user(self, user_id: str) -> UserDeletion:
        if self.failure is not None:
            raise self.failure
        self.erased.append(user_id)
        return UserDeletion(user_id=user_id, turns=3, cache_entries=1, budget_days=2, feedback=4)

    def flush_cache(self, kb_version: str | None = None) -> CacheFlush:
        if self.failure is not None:
            raise self.failure
        self.flushed.append(kb_version)
        return CacheFlush(entries=4, kb_version=kb_version)


@dataclass
class FakeSpending:
    """A budget table: what was settled, and what each user spent today."""

    spent_today: Spend = field(default_factory=Spend)
    settled: list[tuple[str, Spend, Spend]] = field(default_factory=list)

    def settle(
        self, user_id: str, day: str, reserved: Spend, actual: Spend, expires_at: int
    ) -> None:
        self.settled.append((user_id, reserved, actual))

    def spent(self, user_id: str, day: str) -> Spend:
        return self.spent_today


@dataclass
class FakeRatings:
    """The feedback table and the users' history: alice's answers are `answered`, and each
    answer can be rated once."""

    answered_ids: dict[tuple[str, str], AnsweredTurn] = field(
        default_factory=lambda: {
            ("alice", "req-1"): AnsweredTurn(
                request_id="req-1",
                session_id="s-1",
                variant="concise",
                prompt_versions="classify-3,condense-3,answer-2",
                answer_model="bedrock:m",
                category="products",
                language="de",
            )
        }
    )
    failure: Exception | None = None
    looked_up: list[tuple[str, str]] = field(default_factory=list)
    stored: list[Rating] = field(default_factory=list)

    def answered(self, user_id: str, request_id: str) -> AnsweredTurn | None:
        if self.failure is not None:
            raise self.failure
        self.looked_up.append((user_id, request_id))
        return self.answered_ids.get((user_id, request_id))

    def record(self, rating: Rating) -> bool:
        key = (rating.user_id, rating.turn.request_id)
        if any((r.user_id, r.turn.request_id) == key for r in self.stored):
            return False
        self.stored.append(rating)
        return True


NO_LIMITS = BudgetPolicy(
    daily_tokens=0, daily_micro_usd=0, reserve_tokens=8000, reserve_micro_usd=0
)


@dataclass
class Edge:
    """The app under test and its doubles."""

    executor: FakeExecutor = field(default_factory=FakeExecutor)
    sessions: FakeSessions | None = field(default_factory=FakeSessions)
    settings: ApiSettings = SETTINGS
    budget: BudgetPolicy = NO_LIMITS
    spending: FakeSpending | None = None
    ratings: FakeRatings | None = field(default_factory=FakeRatings)
    redact_pii: bool = False

    def services(self) -> ApiServices:
        return ApiServices(
            settings=self.settings,
            experiments=Experiments(experiment("dev"), "kb1", "offline"),
            executor=self.executor,
            user_data=self.sessions,
            budget=self.budget,
            spending=self.spending,
            redact_pii=self.redact_pii,
            ratings=self.ratings,
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
    user: str | None = "alice",
    groups: str = "[]",
    time_epoch: int | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event; with a user, the claims API Gateway's JWT
    authorizer passes (every value a string, a list as "[a b]")."""
    context: dict[str, Any] = {
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1"},
        "stage": "$default",
    }
    if user is not None:
        claims = {"sub": user, "cognito:groups": groups, "exp": "4102444800"}
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if request_id is not None:
        context["requestId"] = request_id
    if time_epoch is not None:
        context["timeEpoch"] = time_epoch
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


def admin_event(method: str, path: str, body: str | None = None, **kwargs: Any) -> dict[str, Any]:
    return event(method, path, body, user="root", groups="[admin ops]", **kwargs)


def encoded(data: bytes, **kwargs: Any) -> dict[str, Any]:
    """A POST /chat whose body API Gateway passed base64-encoded (not UTF-8 text)."""
    return event("POST", "/chat", base64.b64encode(data).decode("ascii"), base64_encoded=True)


@pytest.fixture
def edge() -> Edge:
    return Edge()


@pytest.fixture
def counted() -> Iterator[dict[str, mock.MagicMock]]:
    with (
        mock.patch("concierge.api.app.record_response") as response,
        mock.patch("concierge.api.chat.record_cache_outcome") as cache,
        mock.patch("concierge.api.chat.record_degraded") as degraded,
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
    assert edge.executor.timeouts == [pytest.approx(budget_ms / 1000 + 1, abs=0.1)]
    # And the turn's key sorts by time and names the request; "now" is 10-digit epoch seconds
    assert payload["turn_key"].endswith("#" + SAFE_REQUEST_ID)
    assert before_ms // 1000 <= int(payload["now_epoch_seconds"]) <= after_ms // 1000
    assert len(payload["now_epoch_seconds"]) == 10


def test_the_budget_counts_from_when_api_gateway_received_the_request(edge: Edge) -> None:
    # Given a request API Gateway received 6 seconds ago (a cold start since)
    budget_ms = SETTINGS.request_budget_ms
    received_ms = int(time.time() * 1000) - 6_000

    # When it reaches the handler
    edge.call(chat({"question": "q"}, time_epoch=received_ms))

    # Then the chain's deadline is the budget from that moment, and the wait is 6 s shorter
    assert edge.executor.payloads[0]["deadline_ms"] == received_ms + budget_ms
    assert edge.executor.timeouts == [pytest.approx(budget_ms / 1000 - 6 + 1, abs=0.1)]


@pytest.mark.parametrize("age_ms", [-60_000, 10 * 60_000])
def test_a_receipt_time_no_live_request_has_counts_from_now(edge: Edge, age_ms: int) -> None:
    # Given a request stamped in the future, or longer ago than the budget (a replayed event)
    budget_ms = SETTINGS.request_budget_ms
    before_ms = time.time() * 1000

    # When it reaches the handler
    edge.call(chat({"question": "q"}, time_epoch=int(before_ms) - age_ms))

    # Then the whole budget counts from now
    assert edge.executor.payloads[0]["deadline_ms"] >= before_ms + budget_ms - 1


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
def test_an_admin_bypasses_the_cache_on_request(
    edge: Edge,
    counted: dict[str, mock.MagicMock],
    document: dict[str, Any],
    headers: dict[str, str],
    bypassed: bool,
) -> None:
    # When an administrator asks (or not) to bypass the cache, in the body or with Cache-Control
    edge.call(admin_event("POST", "/chat", json.dumps(document), headers=headers))

    # Then the chain is told, and the outcome counted as a bypass
    assert edge.executor.payloads[0]["cache_bypass"] is bypassed
    assert counted["cache"].call_args.kwargs["bypassed"] is bypassed


@pytest.mark.parametrize(
    ("document", "headers"),
    [
        ({"question": "q", "bypass_cache": True}, {}),
        ({"question": "q"}, {"cache-control": "no-cache"}),
    ],
)
def test_a_user_cannot_bypass_the_cache(
    edge: Edge,
    counted: dict[str, mock.MagicMock],
    document: dict[str, Any],
    headers: dict[str, str],
) -> None:
    # When a user who is not an administrator asks to bypass the cache (HTTP clients send
    # Cache-Control: no-cache by default)
    reply = edge.call(chat(document, headers=headers))

    # Then the question is answered through the cache all the same
    assert reply.status == 200
    assert edge.executor.payloads[0]["cache_bypass"] is False
    assert counted["cache"].call_args.kwargs["bypassed"] is False


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

    # Then the caller's session was deleted, its turns and cache entries counted in the answer
    assert reply.status == 200
    assert reply.json() == {"session_id": "alice-1_b", "turns": 2, "cache_entries": 1}
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID
    assert edge.sessions is not None
    assert edge.sessions.deleted == [("alice", "alice-1_b")]


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


# -- who is calling ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/chat", '{"question": "q"}'),
        ("POST", "/feedback", '{"request_id": "req-1", "rating": "up"}'),
        ("DELETE", "/sessions/s1", None),
        ("GET", "/me/usage", None),
        ("DELETE", "/users/bob", None),
        ("POST", "/admin/cache/flush", '{"all": true}'),
    ],
)
def test_without_a_verified_token_every_route_but_health_is_a_401(
    edge: Edge, method: str, path: str, body: str | None
) -> None:
    # Given an event no authorizer vouched for (no claims)
    request = event(method, path, body, user=None)

    # When it is resolved
    reply = edge.call(request)

    # Then it is refused as unsigned, in the error shape, and nothing ran
    assert reply.status == 401
    assert reply.error["code"] == "unauthorized"
    assert edge.executor.payloads == []
    assert edge.sessions is not None
    assert (edge.sessions.deleted, edge.sessions.erased, edge.sessions.flushed) == ([], [], [])
    assert edge.ratings is not None
    assert (edge.ratings.looked_up, edge.ratings.stored) == ([], [])


def test_health_needs_no_token(edge: Edge) -> None:
    # When GET /health comes without claims
    reply = edge.call(event("GET", "/health", user=None))

    # Then it is answered
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def test_a_question_is_asked_as_its_user_in_their_session(edge: Edge) -> None:
    # When alice asks in her session s1
    edge.call(chat({"question": "q", "session_id": "s1"}))

    # Then the chain runs for her, and the turn's key starts with the session
    payload = edge.executor.payloads[0]
    assert (payload["user_id"], payload["session_id"]) == ("alice", "s1")
    assert payload["turn_key"].startswith("s1#")


def test_a_session_the_caller_does_not_have_is_a_404(edge: Edge) -> None:
    # Given no session s2 in alice's space (whether or not someone else has one of that name)
    assert edge.sessions is not None
    edge.sessions.missing.add("s2")

    # When alice deletes it
    reply = edge.call(event("DELETE", "/sessions/s2"))

    # Then it is a 404, as for any session that does not exist, looked up in her space only
    assert reply.status == 404
    assert reply.error["code"] == "not_found"
    assert edge.sessions.deleted == [("alice", "s2")]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("DELETE", "/users/bob", None), ("POST", "/admin/cache/flush", '{"all": true}')],
)
def test_admin_routes_are_forbidden_to_users(
    edge: Edge, method: str, path: str, body: str | None
) -> None:
    # When a signed-in user who is not an administrator calls an admin route
    reply = edge.call(event(method, path, body, groups="[ops]"))

    # Then it is a 403 and nothing is erased or flushed
    assert reply.status == 403
    assert reply.error["code"] == "forbidden"
    assert edge.sessions is not None
    assert (edge.sessions.erased, edge.sessions.flushed) == ([], [])


def test_an_admin_erases_a_user_and_is_told_the_counts(edge: Edge) -> None:
    # When an administrator erases bob
    reply = edge.call(admin_event("DELETE", "/users/bob"))

    # Then bob's data went, and the counts come back
    assert reply.status == 200
    assert reply.json() == {
        "user_id": "bob",
        "turns": 3,
        "cache_entries": 1,
        "budget_days": 2,
        "feedback": 4,
    }
    assert edge.sessions is not None
    assert edge.sessions.erased == ["bob"]


@pytest.mark.parametrize(
    ("body", "status", "flushed"),
    [
        ('{"all": true}', 200, [None]),
        ('{"kb_version": "v7"}', 200, ["v7"]),
        ("{}", 400, []),
        ('{"all": true, "kb_version": "v7"}', 400, []),
        ('{"all": false}', 400, []),
        ('{"all": "yes"}', 400, []),
        ("[]", 400, []),
    ],
)
def test_an_admin_flushes_all_or_one_version(
    edge: Edge, body: str, status: int, flushed: list[str | None]
) -> None:
    # When an administrator posts a flush request
    reply = edge.call(admin_event("POST", "/admin/cache/flush", body))

    # Then exactly one of the two forms flushes; anything else is a 400
    assert reply.status == status
    assert edge.sessions is not None
    assert edge.sessions.flushed == flushed


# -- budgets ----------------------------------------------------------------------------------
LIMITS = BudgetPolicy(
    daily_tokens=50_000, daily_micro_usd=2_000_000, reserve_tokens=8000, reserve_micro_usd=120_000
)


def test_without_limits_nothing_is_reserved(edge: Edge) -> None:
    # When a question is asked where no daily limit is set
    edge.call(chat({"question": "q"}))

    # Then the chain has nothing to reserve
    assert edge.executor.payloads[0]["budget"] is None


def test_with_limits_the_chain_reserves_and_the_edge_settles_with_the_actual_use() -> None:
    # Given daily limits, and a chain that reserved before its model calls
    spending = FakeSpending()
    executor = FakeExecutor(
        ExecutionResult(status="SUCCEEDED", output={**ANSWERED, "reserved": True})
    )
    edge = Edge(executor=executor, budget=LIMITS, spending=spending)

    # When alice asks
    reply = edge.call(chat({"question": "q"}))

    # Then the chain got the reservation and the limits, and the edge settled it with the
    # tokens and cost the answer reports
    assert reply.status == 200
    budget = executor.payloads[0]["budget"]
    assert (budget["reserve_tokens"], budget["token_limit"]) == (8000, 50_000)
    assert (budget["reserve_micro_usd"], budget["micro_usd_limit"]) == (120_000, 2_000_000)
    assert spending.settled == [("alice", Spend(8000, 120_000), Spend(460, 3000))]


def test_a_cache_hit_costs_nothing_and_settles_nothing() -> None:
    # Given daily limits, and a cached answer (no reservation was made)
    spending = FakeSpending()
    cached = {**ANSWERED, "status": "cached", "usage": [], "reserved": False}
    edge = Edge(
        executor=FakeExecutor(ExecutionResult(status="SUCCEEDED", output=cached)),
        budget=LIMITS,
        spending=spending,
    )

    # When alice asks
    reply = edge.call(chat({"question": "q"}))

    # Then it is served and nothing is counted
    assert (reply.status, reply.json()["cached"]) == (200, True)
    assert spending.settled == []


def test_a_spent_budget_is_a_429_with_retry_after() -> None:
    # Given a chain that found alice's budget spent before any model call
    over = {"status": "failed", "error": "SpendLimitExceededError", "reserved": False}
    edge = Edge(
        executor=FakeExecutor(ExecutionResult(status="SUCCEEDED", output=over)),
        budget=LIMITS,
        spending=FakeSpending(),
    )

    # When alice asks
    reply = edge.call(chat({"question": "q"}))

    # Then it is a 429 saying so, and when to come back (seconds to midnight UTC)
    assert reply.status == 429
    assert reply.error["code"] == "budget_exceeded"
    assert 0 < int(reply.headers["retry-after"]) <= 86_400


def test_a_failed_request_releases_its_reservation() -> None:
    # Given a chain that reserved, then failed
    spending = FakeSpending()
    failed = {"status": "failed", "error": "ModelThrottledError", "reserved": True}
    edge = Edge(
        executor=FakeExecutor(ExecutionResult(status="SUCCEEDED", output=failed)),
        budget=LIMITS,
        spending=spending,
    )

    # When alice asks
    reply = edge.call(chat({"question": "q"}))

    # Then the failure is answered, and the reservation given back
    assert reply.status == 503
    assert spending.settled == [("alice", Spend(8000, 120_000), Spend(0, 0))]


def test_my_usage_is_todays_spend_and_the_limits() -> None:
    # Given what alice spent today
    spending = FakeSpending(spent_today=Spend(tokens=1234, micro_usd=56_000))
    edge = Edge(budget=LIMITS, spending=spending)

    # When she asks for her usage
    reply = edge.call(event("GET", "/me/usage"))

    # Then she gets today's figures and her limits
    body = reply.json()
    assert reply.status == 200
    assert (body["user_id"], body["tokens"], body["cost_usd"]) == ("alice", 1234, 0.056)
    assert body["limits"] == {"tokens": 50_000, "cost_usd": 2.0}
    assert len(body["day"]) == 10


def test_without_limits_my_usage_says_none(edge: Edge) -> None:
    # When alice asks for her usage where no limit is set
    reply = edge.call(event("GET", "/me/usage"))

    # Then she is told there is none
    assert reply.status == 200
    assert reply.json()["limits"] == {"tokens": None, "cost_usd": None}


# -- POST /feedback ---------------------------------------------------------------------------
def feedback(document: Any, **kwargs: Any) -> dict[str, Any]:
    return event("POST", "/feedback", json.dumps(document), **kwargs)


def test_rating_an_answer_stores_it_with_what_served_the_answer(
    edge: Edge, counted: dict[str, mock.MagicMock]
) -> None:
    # Given alice's answer req-1, served by variant `concise` in German
    assert edge.ratings is not None

    # When she rates it down, with a comment, at a known time
    with (
        mock.patch("concierge.api.feedback.time.time", return_value=1_800_000_000.5),
        mock.patch("concierge.api.feedback.record_feedback") as rated,
    ):
        reply = edge.call(
            feedback({"request_id": "req-1", "rating": "down", "comment": "Too long"})
        )

    # Then it is a 201 echoing the answer, the rating and the variant that served it
    assert reply.status == 201
    assert reply.json() == {"request_id": "req-1", "rating": "down", "variant": "concise"}
    assert reply.headers["x-request-id"] == SAFE_REQUEST_ID
    counted["response"].assert_called_once_with(201)
    # And the answer was looked up in her own history, and the rating stored with its facts
    assert edge.ratings.looked_up == [("alice", "req-1")]
    (stored,) = edge.ratings.stored
    assert (stored.user_id, stored.rating, stored.comment) == ("alice", "down", "Too long")
    assert stored.turn == edge.ratings.answered_ids[("alice", "req-1")]
    assert (stored.created_at, stored.expires_at) == (1_800_000_000, 1_800_000_000 + 7_776_000)
    # And it is counted for its variant
    rated.assert_called_once_with("concise", "down")
    # And the chain never ran
    assert edge.executor.payloads == []


def test_a_second_rating_of_the_same_answer_is_a_409_and_the_first_stands(edge: Edge) -> None:
    # Given alice's rating of req-1
    assert edge.call(feedback({"request_id": "req-1", "rating": "up"})).status == 201

    # When she rates it again, the other way
    reply = edge.call(feedback({"request_id": "req-1", "rating": "down"}))

    # Then it is a conflict, and her first rating is the only one
    assert reply.status == 409
    assert reply.error["code"] == "conflict"
    assert edge.ratings is not None
    assert [r.rating for r in edge.ratings.stored] == ["up"]


@pytest.mark.parametrize(
    ("request_event", "why"),
    [
        (feedback({"request_id": "req-2", "rating": "up"}), "an unknown request id"),
        (feedback({"request_id": "req-1", "rating": "up"}, user="bob"), "alice's, rated by bob"),
    ],
    ids=["unknown", "another-users"],
)
def test_an_answer_the_caller_does_not_have_is_a_404(
    edge: Edge, request_event: dict[str, Any], why: str
) -> None:
    # When a rating names an answer the caller has no turn of (never stored, or someone else's)
    reply = edge.call(request_event)

    # Then it is a 404, whoever else has it, and nothing is stored
    assert reply.status == 404, why
    assert reply.error["code"] == "not_found"
    assert edge.ratings is not None
    assert edge.ratings.stored == []


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ("not json", "invalid_json", None),
        ("[]", "invalid_json", None),
        ("{}", "invalid_request", "request_id"),
        ('{"request_id": "req-1"}', "invalid_request", "rating"),
        ('{"request_id": "req-1", "rating": "meh"}', "invalid_request", "rating"),
        ('{"request_id": "req-1", "rating": "UP"}', "invalid_request", "rating"),
        ('{"request_id": "req-1", "rating": 1}', "invalid_request", "rating"),
        ('{"request_id": "req 1", "rating": "up"}', "invalid_request", "request_id"),
        ('{"request_id": "", "rating": "up"}', "invalid_request", "request_id"),
        (json.dumps({"request_id": "r" * 65, "rating": "up"}), "invalid_request", "request_id"),
        ('{"request_id": 7, "rating": "up"}', "invalid_request", "request_id"),
        ('{"request_id": "req-1", "rating": "up", "comment": 5}', "invalid_request", "comment"),
        (
            json.dumps({"request_id": "req-1", "rating": "up", "comment": "x" * 1001}),
            "invalid_request",
            "comment",
        ),
    ],
)
def test_bad_feedback_is_a_400_naming_the_field_and_stores_nothing(
    edge: Edge, body: str, code: str, named: str | None
) -> None:
    # When a malformed rating is posted
    reply = edge.call(event("POST", "/feedback", body))

    # Then it is a 400 with its code, naming the wrong field, and no table was reached
    assert reply.status == 400
    assert reply.error["code"] == code
    if named is not None:
        assert reply.error["message"].startswith(f"{named}: ")
    assert edge.ratings is not None
    assert (edge.ratings.looked_up, edge.ratings.stored) == ([], [])


def test_a_comment_of_1000_characters_and_other_fields_are_accepted(edge: Edge) -> None:
    # When a rating comes with the longest comment and a field the contract does not know
    body = {"request_id": "req-1", "rating": "up", "comment": "é" * 1000, "stars": 5}
    reply = edge.call(feedback(body))

    # Then it is stored, the comment whole, the unknown field ignored
    assert reply.status == 201
    assert edge.ratings is not None
    assert edge.ratings.stored[0].comment == "é" * 1000


def test_an_empty_comment_is_no_comment_and_personal_data_is_masked_when_asked() -> None:
    # Given an api function that keeps personal data out of what it stores
    edge = Edge(redact_pii=True)

    # When alice rates one answer with an empty comment, and another with her address in it
    edge.call(feedback({"request_id": "req-1", "rating": "up", "comment": ""}))
    assert edge.ratings is not None
    edge.ratings.answered_ids[("alice", "req-2")] = replace(
        edge.ratings.answered_ids[("alice", "req-1")], request_id="req-2"
    )
    edge.call(
        feedback({"request_id": "req-2", "rating": "down", "comment": "Write to alice@example.com"})
    )

    # Then the first is stored without a comment, the second with the address masked
    assert [r.comment for r in edge.ratings.stored] == [None, "Write to [email]"]


def test_feedback_without_its_table_is_a_500_and_with_failing_tables_a_503() -> None:
    # Given an api function without the feedback table, and one whose tables fail
    unconfigured = Edge(ratings=None)
    failing = Edge(ratings=FakeRatings(failure=StoreUnavailableError("throttled")))

    # When alice rates her answer on each
    missing = unconfigured.call(feedback({"request_id": "req-1", "rating": "up"}))
    down = failing.call(feedback({"request_id": "req-1", "rating": "up"}))

    # Then the first is misconfigured, the second worth a retry
    assert (missing.status, missing.error["code"]) == (500, "misconfigured")
    assert (down.status, down.error["code"]) == (503, "store_unavailable")


def test_feedback_logs_never_hold_the_comment(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    # When alice rates her answer with a comment
    edge.call(feedback({"request_id": "req-1", "rating": "down", "comment": "my private words"}))

    # Then the log says it was rated, by which variant, and that there was a comment, not what
    logged = _logged(caplog)
    assert "answer rated" in logged
    assert "concise" in logged
    assert "my private words" not in logged


@pytest.mark.parametrize(("method", "status"), [("GET", 405), ("DELETE", 405), ("PUT", 405)])
def test_feedback_takes_post_only(edge: Edge, method: str, status: int) -> None:
    # When /feedback is called with another method
    reply = edge.call(event(method, "/feedback", None))

    # Then it is a 405 naming the method to use
    assert reply.status == status
    assert reply.error == {
        "code": "method_not_allowed",
        "message": "Use POST /feedback.",
        "request_id": SAFE_REQUEST_ID,
    }
