"""The state machine executed locally end to end: statemachine/chat.asl.json in moto, the real
handlers in-process, DynamoDB emulated. Each failure path is produced for real."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from local_api import ask, table_items
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from concierge.adapters.llm.offline import OfflineModel
from concierge.errors import ModelInvocationError, ModelThrottledError
from concierge.models.state import CacheLookup, ChainInput
from concierge_cli.local.runtime import LocalRuntime


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept, so failure paths run fast."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


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
    # One cheap call rewrites and classifies the follow-up; no separate classify.
    assert sorted(model_calls) == ["answer", "condense"]
    assert body["citations"][0]["source"] == "en-price-list.md"
    assert "Pika" in body["answer"]
    assert body["usage"]["llm_calls"] == 2
    turns = table_items(runtime, "HistoryTable")
    assert sorted(t["question"]["S"] for t in turns) == [
        "What do you sell?",
        "Which of them is cheapest?",
    ]


def test_a_follow_up_is_never_looked_up_by_its_raw_wording(runtime: LocalRuntime) -> None:
    _, first = ask(runtime, "Which of them is cheapest?")  # a first turn, cached as asked
    assert first["cached"] is False
    ask(runtime, "Do you have a shop?", session_id="s2")
    # The same words as a follow-up mean something else: "them" are this session's subject.
    _, body = ask(runtime, "Which of them is cheapest?", session_id="s2")
    assert body["cached"] is False


def test_a_follow_up_that_stands_alone_is_served_from_the_cache_after_condense(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    question = "How long is the warranty on backpacks?"
    ask(runtime, question)  # answered and cached as a first turn
    ask(runtime, "Do you have a shop?", session_id="s2")
    model_calls.clear()
    _, body = ask(runtime, question, session_id="s2")
    assert body["cached"] is True
    assert model_calls == ["condense"]
    assert body["usage"]["llm_calls"] == 1


def test_an_unanswerable_question_says_so_and_is_not_cached(runtime: LocalRuntime) -> None:
    _, body = ask(runtime, "What is the capital of Peru?")
    assert body["citations"] == []
    assert "could not find" in body["answer"]
    assert table_items(runtime, "CacheTable") == []


def test_a_retried_history_write_does_not_duplicate_the_turn(runtime: LocalRuntime) -> None:
    # Given one execution input run twice, as a retried request would be
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    question = "Do you repair tents?"
    chain_input = ChainInput(
        request_id="req1",
        session_id="s3",
        question=question,
        lookup=CacheLookup(cache_key="q#test", question=question, language="en"),
        cache_language="en",
        cache_scope="test",
        kb_version="test",
        history_turns=6,
        turn_key="0000000000001#req1",
        now_epoch_seconds=f"{int(time.time()):010d}",
        deadline_ms=int(time.time() * 1000) + 27_000,
        cache_expires_at=int(time.time()) + 60,
        history_expires_at=int(time.time()) + 60,
    )
    payload = chain_input.model_dump_json()
    for name in ("attempt-1", "attempt-2"):
        arn = sfn.start_execution(
            stateMachineArn=runtime.state_machine_arn, name=name, input=payload
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


@pytest.fixture
def degraded() -> Iterator[list[str]]:
    """The degraded parts the api function counted, request by request."""
    counted: list[str] = []
    with mock.patch("concierge.api.record_degraded", side_effect=counted.extend):
        yield counted


def test_the_history_store_being_down_still_gives_an_answer(
    runtime: LocalRuntime, degraded: list[str]
) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["HistoryTable"]
    )
    status, body = ask(runtime, "What do you sell?", session_id="s4")
    assert status == 200
    assert body["citations"]
    assert sorted(degraded) == ["history_read", "history_write"]


def test_the_cache_being_down_still_gives_an_answer(
    runtime: LocalRuntime, degraded: list[str]
) -> None:
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["CacheTable"]
    )
    status, body = ask(runtime, "What do you sell?")
    assert status == 200
    assert body["cached"] is False
    assert sorted(degraded) == ["cache_read", "cache_write"]


def test_a_cache_entry_counts_its_hits_and_names_its_session_and_knowledge_base(
    runtime: LocalRuntime,
) -> None:
    ask(runtime, "What do you sell?", session_id="producer")
    for _ in range(2):
        assert ask(runtime, "what do you sell")[1]["cached"] is True
    (entry,) = table_items(runtime, "CacheTable")
    assert entry["hits"]["N"] == "2"
    assert entry["session_id"]["S"] == "producer"
    assert entry["kb_version"]["S"] == os.environ["CONCIERGE_KB_VERSION"]


def test_a_bypass_answers_as_if_there_were_no_cache(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    ask(runtime, "What do you sell?")
    stored = table_items(runtime, "CacheTable")
    model_calls.clear()
    status, body = ask(runtime, "What do you sell?", bypass_cache=True)
    assert (status, body["cached"]) == (200, False)
    assert model_calls == ["classify", "answer"]
    # Neither served nor stored: the entry is the first request's, untouched.
    assert table_items(runtime, "CacheTable") == stored
    ask(runtime, "How long is the warranty on backpacks?", bypass_cache=True)
    assert table_items(runtime, "CacheTable") == stored


def test_an_answer_in_another_language_than_its_key_is_not_stored(runtime: LocalRuntime) -> None:
    original = OfflineModel.generate

    def says_german(self: OfflineModel, request: Any) -> Any:
        reply = original(self, request)
        if request.task != "classify":
            return reply
        return reply.model_copy(update={"text": reply.text.replace('"en"', '"de"')})

    with mock.patch.object(OfflineModel, "generate", says_german):
        _, body = ask(runtime, "What do you sell?")
    # Looked up as English, answered in German: stored, it would greet the next English asker.
    assert body["language"] == "de"
    assert table_items(runtime, "CacheTable") == []


def test_concurrent_requests_each_get_their_own_answer(runtime: LocalRuntime) -> None:
    # The local runtime shares one parsed definition between executions: no state may leak.
    questions = [
        "What do you sell?",
        "How long is the warranty on backpacks?",
        "¿Cuánto cuesta el envío?",
        "Wie lange dauert der Versand nach Österreich?",
    ] * 2
    expected = {question: ask(runtime, question, bypass_cache=True)[1] for question in questions}
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda q: ask(runtime, q, session_id=uuid.uuid4().hex)[1], questions)
        )
    for question, body in zip(questions, answers, strict=True):
        assert (body["answer"], body["language"]) == (
            expected[question]["answer"],
            expected[question]["language"],
        )
