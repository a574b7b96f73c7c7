"""The state machine executed locally end to end: statemachine/chat.asl.json in moto, the real
handlers in-process, DynamoDB emulated. Each failure path is produced for real."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from local_api import ask, table_items
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from concierge.adapters.llm.offline import OfflineModel
from concierge.errors import ModelInvocationError, ModelThrottledError
from concierge.knowledge import IndexFile
from concierge.models.state import CacheLookup, ChainInput
from concierge_cli.local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded instead of slept, so failure paths run fast."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def model_classifies(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """A local runtime whose classify step always asks the model (no local classifier)."""
    path, index = sample_index
    environ = {"CONCIERGE_LOCAL_CLASSIFIER": "off"}
    with LocalRuntime(REPO_ROOT, path, index.kb_version, environ=environ) as local:
        yield local


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
    # When a first question is asked, with no history
    status, body = ask(runtime, "What do you sell?")

    # Then it is answered from the knowledge base by the answer model alone: the index's top
    # passages made the category clear, so classify called no model (and no condense without
    # history)
    assert status == 200
    assert body["cached"] is False
    assert body["category"] == "products"
    assert body["citations"][0]["source"] == "en-product-overview.md"
    assert model_calls == ["answer"]
    assert body["usage"]["llm_calls"] == 1
    # And the answer is cached
    assert len(table_items(runtime, "CacheTable")) == 1


def test_a_repeated_question_is_served_from_the_cache_without_model_calls(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    # Given a question answered once
    _, first = ask(runtime, "What do you sell?")
    model_calls.clear()

    # When it is asked again, in other case and spacing
    status, second = ask(runtime, "  what do you SELL ")

    # Then the same answer is served from the cache, without a model call
    assert status == 200
    assert second["cached"] is True
    assert second["usage"]["llm_calls"] == 0
    assert (second["answer"], second["citations"]) == (first["answer"], first["citations"])
    assert model_calls == []


def test_an_expired_cache_entry_is_a_miss(runtime: LocalRuntime) -> None:
    # Given a cached answer whose entry has expired
    ask(runtime, "What do you sell?")
    client = boto3.client("dynamodb", region_name="us-east-1")
    (item,) = table_items(runtime, "CacheTable")
    item["expires_at"] = {"N": str(int(time.time()) - 10)}
    client.put_item(TableName=runtime.table_names["CacheTable"], Item=item)

    # When the question is asked again
    _, body = ask(runtime, "What do you sell?")

    # Then it is not served from the cache
    assert body["cached"] is False


def test_a_follow_up_is_condensed_against_the_session_history(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    # Given a session with one turn
    ask(runtime, "What do you sell?", session_id="s1")
    model_calls.clear()

    # When a follow-up is asked in it
    status, body = ask(runtime, "Which of them is cheapest?", session_id="s1")

    # Then one cheap call rewrites and classifies the follow-up (no separate classify), and
    # the answer is about the earlier turn's subject
    assert status == 200
    assert sorted(model_calls) == ["answer", "condense"]
    assert body["citations"][0]["source"] == "en-price-list.md"
    assert "Pika" in body["answer"]
    assert body["usage"]["llm_calls"] == 2
    # And the session history holds both turns
    turns = table_items(runtime, "HistoryTable")
    assert sorted(t["question"]["S"] for t in turns) == [
        "What do you sell?",
        "Which of them is cheapest?",
    ]


def test_a_follow_up_is_never_looked_up_by_its_raw_wording(runtime: LocalRuntime) -> None:
    # Given the words of a follow-up answered and cached as a first turn, and a session about
    # something else
    _, first = ask(runtime, "Which of them is cheapest?")
    assert first["cached"] is False
    ask(runtime, "Do you have a shop?", session_id="s2")

    # When the same words are asked as a follow-up in that session
    _, body = ask(runtime, "Which of them is cheapest?", session_id="s2")

    # Then the cached answer is not served: "them" are this session's subject
    assert body["cached"] is False


def test_a_follow_up_that_stands_alone_is_served_from_the_cache_after_condense(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    # Given a question answered and cached as a first turn, and a session about something else
    question = "How long is the warranty on backpacks?"
    ask(runtime, question)
    ask(runtime, "Do you have a shop?", session_id="s2")
    model_calls.clear()

    # When the same question is asked as a follow-up in that session
    _, body = ask(runtime, question, session_id="s2")

    # Then condense alone runs, and the cached answer of the question it stands for is served
    assert body["cached"] is True
    assert model_calls == ["condense"]
    assert body["usage"]["llm_calls"] == 1


def test_an_unanswerable_question_says_so_and_is_not_cached(runtime: LocalRuntime) -> None:
    # When a question the knowledge base has nothing on is asked
    _, body = ask(runtime, "What is the capital of Peru?")

    # Then the answer says so, citing nothing, and is not cached
    assert body["citations"] == []
    assert "could not find" in body["answer"]
    assert table_items(runtime, "CacheTable") == []


def test_a_retried_history_write_does_not_duplicate_the_turn(runtime: LocalRuntime) -> None:
    # Given one execution input
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    question = "Do you repair tents?"
    chain_input = ChainInput(
        request_id="req1",
        user_id="alice",
        session_id="s3",
        question=question,
        stored_question=question,
        lookup=CacheLookup(cache_key="q#test", question=question, language="en"),
        cache_language="en",
        cache_scope="test",
        kb_version="test",
        history_turns=6,
        turn_key="s3#0000000000001#req1",
        now_epoch_seconds=f"{int(time.time()):010d}",
        deadline_ms=int(time.time() * 1000) + 27_000,
        cache_expires_at=int(time.time()) + 60,
        history_expires_at=int(time.time()) + 60,
    )
    payload = chain_input.model_dump_json()

    # When it is run twice, as a retried request would be
    statuses = []
    for name in ("attempt-1", "attempt-2"):
        arn = sfn.start_execution(
            stateMachineArn=runtime.state_machine_arn, name=name, input=payload
        )["executionArn"]
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            time.sleep(0.01)
        statuses.append(described["status"])

    # Then both runs succeed, and the session holds the turn once
    assert statuses == ["SUCCEEDED", "SUCCEEDED"]
    assert len(table_items(runtime, "HistoryTable")) == 1


def test_throttling_degrades_classify_and_is_reported_as_unavailable_by_the_answer(
    runtime: LocalRuntime, retry_waits: list[float]
) -> None:
    # Given a model that is always throttled
    attempts: list[str] = []

    def throttled(self: OfflineModel, request: Any) -> Any:
        attempts.append(request.task)
        raise ModelThrottledError("busy")

    # When a question in German is asked (the sample hardly covers German, so classify asks
    # the model for its translation)
    with mock.patch.object(OfflineModel, "generate", throttled):
        status, body = ask(runtime, "Wie lange habe ich Garantie auf einen Rucksack?")

    # Then classify went on with its defaults after its two attempts, and the answer, which
    # cannot be defaulted, is reported unavailable
    assert status == 503
    assert body["error"]["code"] == "model_unavailable"
    # And the answer step made two attempts (one retry), then Step Functions ran it once more,
    # waiting inside the budget (full jitter under MaxDelaySeconds)
    assert attempts == ["classify"] * 2 + ["answer"] * 4
    assert len(retry_waits) == 1
    assert sum(retry_waits) <= 4


def test_a_client_error_from_the_model_fails_fast(
    runtime: LocalRuntime, retry_waits: list[float]
) -> None:
    # Given a model that is denied access when it answers
    original = OfflineModel.generate
    calls: list[str] = []

    def spy(self: OfflineModel, request: Any) -> Any:
        calls.append(request.task)
        if request.task == "answer":
            raise ModelInvocationError("access denied")
        return original(self, request)

    # When a question is asked
    with mock.patch.object(OfflineModel, "generate", spy):
        status, body = ask(runtime, "What do you sell?")

    # Then a model error is reported after one attempt, without a retry, and without the
    # provider's message
    assert status == 502
    assert body["error"]["code"] == "model_error"
    assert calls.count("answer") == 1
    assert retry_waits == []
    assert "access denied" not in json.dumps(body)


@pytest.fixture
def degraded() -> Iterator[list[str]]:
    """The degraded parts the api function counted, request by request."""
    counted: list[str] = []
    with mock.patch("concierge.api.chat.record_degraded", side_effect=counted.extend):
        yield counted


def test_the_history_store_being_down_still_gives_an_answer(
    runtime: LocalRuntime, degraded: list[str]
) -> None:
    # Given the history table gone
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["HistoryTable"]
    )

    # When a question is asked in a session
    status, body = ask(runtime, "What do you sell?", session_id="s4")

    # Then it is answered, and the history read and write are counted as degraded
    assert status == 200
    assert body["citations"]
    assert sorted(degraded) == ["history_read", "history_write"]


def test_the_cache_being_down_still_gives_an_answer(
    runtime: LocalRuntime, degraded: list[str]
) -> None:
    # Given the cache table gone
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=runtime.table_names["CacheTable"]
    )

    # When a question is asked
    status, body = ask(runtime, "What do you sell?")

    # Then it is answered, and the cache read and write are counted as degraded
    assert status == 200
    assert body["cached"] is False
    assert sorted(degraded) == ["cache_read", "cache_write"]


def test_a_cache_entry_counts_its_hits_and_names_its_session_and_knowledge_base(
    runtime: LocalRuntime,
) -> None:
    # Given a question answered in one session
    ask(runtime, "What do you sell?", session_id="producer")

    # When it is asked twice more
    replies = [ask(runtime, "what do you sell")[1] for _ in range(2)]

    # Then both are served from the cache
    for reply in replies:
        assert reply["cached"] is True
    # And its one entry counts the two hits and names the session and the knowledge base
    (entry,) = table_items(runtime, "CacheTable")
    assert entry["hits"]["N"] == "2"
    assert entry["session_id"]["S"] == "producer"
    assert entry["kb_version"]["S"] == os.environ["CONCIERGE_KB_VERSION"]


def test_a_bypass_answers_as_if_there_were_no_cache(
    runtime: LocalRuntime, model_calls: list[str]
) -> None:
    # Given a cached answer
    ask(runtime, "What do you sell?")
    stored = table_items(runtime, "CacheTable")
    model_calls.clear()

    # When the question is asked again, bypassing the cache
    status, body = ask(runtime, "What do you sell?", bypass_cache=True)

    # Then the answer model answers it (its category is clear from the index)
    assert (status, body["cached"]) == (200, False)
    assert model_calls == ["answer"]
    # And neither served nor stored: the entry is the first request's, untouched
    assert table_items(runtime, "CacheTable") == stored

    # When a new question is asked, bypassing the cache
    ask(runtime, "How long is the warranty on backpacks?", bypass_cache=True)

    # Then its answer is not stored either
    assert table_items(runtime, "CacheTable") == stored


def test_an_answer_in_another_language_than_its_key_is_not_stored(
    model_classifies: LocalRuntime,
) -> None:
    # Given a classify model that finds German in an English question (the local classifier
    # off, so that the model classifies it)
    runtime = model_classifies
    original = OfflineModel.generate

    def says_german(self: OfflineModel, request: Any) -> Any:
        reply = original(self, request)
        if request.task != "classify":
            return reply
        return reply.model_copy(update={"text": reply.text.replace('"en"', '"de"')})

    # When the question is asked
    with mock.patch.object(OfflineModel, "generate", says_german):
        _, body = ask(runtime, "What do you sell?")

    # Then it is answered in German, and not stored: looked up as English, it would greet the
    # next English asker
    assert body["language"] == "de"
    assert table_items(runtime, "CacheTable") == []


def test_concurrent_requests_each_get_their_own_answer(runtime: LocalRuntime) -> None:
    # Given questions and the answers they get one at a time (the local runtime shares one
    # parsed definition between executions: no state may leak)
    questions = [
        "What do you sell?",
        "How long is the warranty on backpacks?",
        "¿Cuánto cuesta el envío?",
        "Wie lange dauert der Versand nach Österreich?",
    ] * 2
    expected = {question: ask(runtime, question, bypass_cache=True)[1] for question in questions}

    # When they are asked all at once, each in a session of its own
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda q: ask(runtime, q, session_id=uuid.uuid4().hex)[1], questions)
        )

    # Then each gets the answer it gets alone, in its language
    for question, body in zip(questions, answers, strict=True):
        assert (body["answer"], body["language"]) == (
            expected[question]["answer"],
            expected[question]["language"],
        )


@pytest.mark.parametrize("step", ["classify", "condense"])
def test_a_failed_side_step_degrades_to_its_defaults_and_the_question_is_answered(
    model_classifies: LocalRuntime, step: str
) -> None:
    # Given a model that is throttled whenever it is asked to classify or condense
    original = OfflineModel.generate
    failed: list[str] = []

    def side_steps_throttled(self: OfflineModel, request: Any) -> Any:
        if request.task == step:
            failed.append(request.task)
            raise ModelThrottledError("busy")
        return original(self, request)

    # When a first question is asked, and then a follow-up in its session
    with mock.patch.object(OfflineModel, "generate", side_steps_throttled):
        first_status, first = ask(model_classifies, "How long is the warranty on backpacks?")
        status, body = ask(
            model_classifies,
            "Can I return a tent I have used?",
            session_id=first["session_id"],
        )

    # Then both are answered: the failed step went on with the question as asked, its detected
    # language and the default category, and no attempt was repeated by Step Functions
    assert (first_status, status) == (200, 200)
    answered = first if step == "classify" else body
    assert answered["language"] == "en" and answered["category"] == "general"
    assert answered["citations"]
    assert failed == [step, step]
