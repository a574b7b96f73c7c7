"""The state machine executed locally end to end: statemachine/chat.asl.json in moto, the real
handlers in-process, DynamoDB emulated. Each failure path is produced for real."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from concierge.adapters.llm.offline import OfflineModel
from concierge.errors import ModelInvocationError, ModelThrottledError
from concierge.local.runtime import LocalRuntime


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept, so failure paths run fast."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


def ask(
    runtime: LocalRuntime, question: str, session_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    body = {"question": question, **({"session_id": session_id} if session_id else {})}
    event = {
        "rawPath": "/chat",
        "requestContext": {"http": {"method": "POST"}, "requestId": uuid.uuid4().hex},
        "body": json.dumps(body),
    }
    response = runtime.api(event)
    return response["statusCode"], json.loads(response["body"])


def table_items(runtime: LocalRuntime, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb", region_name="us-east-1").scan(
        TableName=runtime.table_names[logical_id]
    )["Items"]
    return items


@pytest.fixture
def model_calls() -> Iterator[list[str]]:
    """The tasks the offline model was asked to do, in order."""
    calls: list[str] = []
    original = OfflineModel.generate

    def spy(self: OfflineModel, request: Any) -> Any:
        calls.append(request.task)
        return original(self, request)

    with mock.patch.object(OfflineModel, "generate", spy):
        yield calls


def test_a_first_question_is_answered_with_citations_and_cached(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    status, body = ask(runtime, "What do you sell?")
    assert status == 200
    assert body["cached"] is False
    assert body["category"] == "products"
    assert body["citations"][0]["source"] == "en-product-overview.md"
    assert model_calls == ["classify", "answer"]  # no condense without history
    assert len(table_items(runtime, "CacheTable")) == 1


def test_a_repeated_question_is_served_from_the_cache_without_model_calls(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    _, first = ask(runtime, "What do you sell?")
    model_calls.clear()
    status, second = ask(runtime, "  what do you SELL ")
    assert status == 200
    assert second["cached"] is True
    assert second["usage"]["llm_calls"] == 0
    assert (second["answer"], second["citations"]) == (first["answer"], first["citations"])
    assert model_calls == []


def test_an_expired_cache_entry_is_a_miss(runtime: LocalRuntime) -> None:
    ask(runtime, "What do you sell?")
    client = boto3.client("dynamodb", region_name="us-east-1")
    (item,) = table_items(runtime, "CacheTable")
    item["expires_at"] = {"N": str(int(time.time()) - 10)}
    client.put_item(TableName=runtime.table_names["CacheTable"], Item=item)
    _, body = ask(runtime, "What do you sell?")
    assert body["cached"] is False


def test_a_follow_up_is_condensed_against_the_session_history(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    ask(runtime, "What do you sell?", session_id="s1")
    model_calls.clear()
    status, body = ask(runtime, "Which of them is cheapest?", session_id="s1")
    assert status == 200
    assert sorted(model_calls) == ["answer", "classify", "condense"]
    assert body["citations"][0]["source"] == "en-price-list.md"
    assert "Pika" in body["answer"]
    assert body["usage"]["llm_calls"] == 3
    turns = table_items(runtime, "HistoryTable")
    assert sorted(t["question"]["S"] for t in turns) == [
        "What do you sell?",
        "Which of them is cheapest?",
    ]


def test_a_follow_up_is_never_answered_from_the_first_turn_cache(runtime: LocalRuntime) -> None:
    ask(runtime, "What do you sell?")  # cached under its wording
    ask(runtime, "Do you have a shop?", session_id="s2")
    _, body = ask(runtime, "What do you sell?", session_id="s2")
    assert body["cached"] is False


def test_an_unanswerable_question_says_so_and_is_not_cached(runtime: LocalRuntime) -> None:
    _, body = ask(runtime, "What is the capital of Peru?")
    assert body["citations"] == []
    assert "could not find" in body["answer"]
    assert table_items(runtime, "CacheTable") == []


def test_a_retried_history_write_does_not_duplicate_the_turn(runtime: LocalRuntime) -> None:
    # Given one execution input run twice, as a retried request would be
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    payload = {
        "request_id": "req1",
        "session_id": "s3",
        "question": "Do you repair tents?",
        "cache_key": "q#test",
        "turn_key": "0000000000001#req1",
        "now_epoch_seconds": f"{int(time.time()):010d}",
        "deadline_ms": int(time.time() * 1000) + 27_000,
        "cache_expires_at": int(time.time()) + 60,
        "history_expires_at": int(time.time()) + 60,
    }
    for name in ("attempt-1", "attempt-2"):
        arn = sfn.start_execution(
            stateMachineArn=runtime.state_machine_arn, name=name, input=json.dumps(payload)
        )["executionArn"]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            time.sleep(0.01)
        assert described["status"] == "SUCCEEDED"
    # Then the session holds the turn once
    assert len(table_items(runtime, "HistoryTable")) == 1


def test_throttling_is_retried_then_reported_as_unavailable(
    runtime: LocalRuntime, retry_waits: list[float]
) -> None:
    attempts: list[str] = []

    def throttled(self: OfflineModel, request: Any) -> Any:
        attempts.append(request.task)
        raise ModelThrottledError("busy")

    with mock.patch.object(OfflineModel, "generate", throttled):
        status, body = ask(runtime, "What do you sell?")
    assert status == 503
    assert body["error"]["code"] == "model_unavailable"
    # Two attempts inside the step (one retry), then one more run of the step by Step Functions
    assert attempts == ["classify"] * 4
    assert len(retry_waits) == 1
    assert sum(retry_waits) <= 4  # full jitter under MaxDelaySeconds keeps inside the budget


def test_a_client_error_from_the_model_fails_fast(
    runtime: LocalRuntime, retry_waits: list[float]
) -> None:
    original = OfflineModel.generate
    calls: list[str] = []

    def spy(self: OfflineModel, request: Any) -> Any:
        calls.append(request.task)
        if request.task == "answer":
            raise ModelInvocationError("access denied")
        return original(self, request)

    with mock.patch.object(OfflineModel, "generate", spy):
        status, body = ask(runtime, "What do you sell?")
    assert status == 502
    assert body["error"]["code"] == "model_error"
    assert calls.count("answer") == 1
    assert retry_waits == []
    assert "access denied" not in json.dumps(body)


def test_the_history_store_being_down_still_gives_an_answer(runtime: LocalRuntime) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["HistoryTable"]
    )
    status, body = ask(runtime, "What do you sell?", session_id="s4")
    assert status == 200
    assert body["citations"]


def test_the_cache_being_down_still_gives_an_answer(runtime: LocalRuntime) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["CacheTable"]
    )
    status, body = ask(runtime, "What do you sell?")
    assert status == 200
    assert body["cached"] is False
