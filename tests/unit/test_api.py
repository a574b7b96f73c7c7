import json
from typing import Any

import pytest

from concierge.adapters.executor import ExecutionResult
from concierge.api import handle
from concierge.config import ApiSettings

SETTINGS = ApiSettings(
    state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:chat", answer_model="offline"
)
ANSWERED = {
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


class FakeExecutor:
    def __init__(self, result: ExecutionResult) -> None:
        self.result = result
        self.payloads: list[dict[str, Any]] = []

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        self.payloads.append(payload)
        return self.result


def _event(body: str | None, method: str = "POST", path: str = "/chat") -> dict[str, Any]:
    return {
        "rawPath": path,
        "requestContext": {"http": {"method": method}, "requestId": "abc=123"},
        "body": body,
    }


def _call(
    body: str | None, result: ExecutionResult | None = None, **kw: Any
) -> tuple[int, dict[str, Any], FakeExecutor]:
    executor = FakeExecutor(result or ExecutionResult(status="SUCCEEDED", output=ANSWERED))
    response = handle(_event(body, **kw), SETTINGS, executor)
    return response["statusCode"], json.loads(response["body"]), executor


def test_an_answer_is_mapped_to_the_public_contract() -> None:
    status, body, executor = _call(
        json.dumps({"question": "What do you sell?", "session_id": "s-1"})
    )
    assert status == 200
    assert set(body) == {
        "answer",
        "citations",
        "category",
        "language",
        "cached",
        "session_id",
        "request_id",
        "usage",
    }
    assert body["session_id"] == "s-1"
    assert body["request_id"] == "abc123"
    assert body["cached"] is False
    assert body["usage"] == {
        "llm_calls": 2,
        "input_tokens": 400,
        "output_tokens": 60,
        "cost_usd": 0.003,
    }
    assert executor.payloads[0]["question"] == "What do you sell?"


def test_a_new_session_id_is_issued_when_none_is_given() -> None:
    _, body, _ = _call(json.dumps({"question": "Hi?"}))
    assert len(body["session_id"]) >= 16


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '"question"',
        "{}",
        '{"question": ""}',
        '{"question": 42}',
        '{"question": null}',
        '{"question": ["a"]}',
        json.dumps({"question": "x" * 4001}),
        '{"question": "ok", "session_id": ""}',
        '{"question": "ok", "session_id": "has space"}',
        json.dumps({"question": "ok", "session_id": "s" * 129}),
        '{"question": "ok", "session_id": 7}',
        None,
    ],
)
def test_bad_input_is_a_400_and_starts_no_execution(body: str | None) -> None:
    status, document, executor = _call(body)
    assert status == 400
    assert set(document["error"]) == {"code", "message", "request_id"}
    assert executor.payloads == []


def test_a_body_over_64_kb_is_a_413() -> None:
    status, document, executor = _call(json.dumps({"question": "x" * 70_000}))
    assert status == 413
    assert document["error"]["code"] == "payload_too_large"
    assert executor.payloads == []


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
                status="SUCCEEDED",
                output={"status": "failed", "error": "KeyError", "cause": "Traceback ..."},
            ),
            500,
            "internal_error",
        ),
        (ExecutionResult(status="TIMED_OUT"), 504, "timeout"),
        (
            ExecutionResult(status="FAILED", error="States.Runtime", cause="boom"),
            500,
            "internal_error",
        ),
    ],
)
def test_a_failed_chain_is_a_clear_error_without_internals(
    result: ExecutionResult, status: int, code: str
) -> None:
    got_status, document, _ = _call(json.dumps({"question": "q"}), result)
    assert got_status == status
    assert document["error"]["code"] == code
    assert "Traceback" not in json.dumps(document)
    assert document["error"]["request_id"] == "abc123"


def test_health_and_unknown_routes() -> None:
    assert _call(None, method="GET", path="/health")[0] == 200
    assert _call(None, method="GET", path="/nope")[1]["error"]["code"] == "not_found"
    assert _call(None, method="GET", path="/chat")[0] == 405


def test_the_chain_input_carries_a_deadline_inside_the_budget() -> None:
    _, _, executor = _call(json.dumps({"question": "q"}))
    payload = executor.payloads[0]
    assert payload["deadline_ms"] > 0
    assert payload["turn_key"].endswith("#abc123")
    assert len(payload["now_epoch_seconds"]) == 10


def test_deeply_nested_json_is_a_400_not_a_crash() -> None:
    status, document, executor = _call("[" * 30_000 + "]" * 30_000)
    assert status == 400
    assert document["error"]["code"] == "invalid_json"
    assert executor.payloads == []


def test_a_json_body_in_utf16_is_refused() -> None:
    body = json.dumps({"question": "What do you sell?"}).encode("utf-16")
    executor = FakeExecutor(ExecutionResult(status="SUCCEEDED", output=ANSWERED))
    event = {**_event(None), "body": body}
    assert handle(event, SETTINGS, executor)["statusCode"] == 400


def test_an_unexpected_error_still_answers_in_the_error_shape() -> None:
    class BrokenExecutor:
        def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
            raise RuntimeError("connection reset")

    response = handle(_event(json.dumps({"question": "q"})), SETTINGS, BrokenExecutor())
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"]["code"] == "internal_error"
    assert "connection reset" not in response["body"]
