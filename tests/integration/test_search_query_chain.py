"""search_query through the real definition: classify's (first turn) or condense's (follow-up)
reaches the retrieve step, which searches with it too; a null one is carried as null."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from local_api import ask

from concierge.adapters.llm.offline import OfflineModel
from concierge.adapters.retrieval.local_index import LocalIndex
from concierge_cli.local.runtime import LocalRuntime

GERMAN = "Wie lange habe ich Garantie auf einen Rucksack?"
TRANSLATION = "How long is the warranty on a backpack?"


@pytest.fixture
def searched() -> Iterator[list[str]]:
    """Every query the local index was searched with, in order."""
    queries: list[str] = []
    original = LocalIndex.search

    def spy(self: LocalIndex, query: str, *args: Any, **kwargs: Any) -> Any:
        queries.append(query)
        return original(self, query, *args, **kwargs)

    with mock.patch.object(LocalIndex, "search", spy):
        yield queries


def _translating(tasks: tuple[str, ...]) -> Any:
    """The offline model, but for `tasks` a reply that carries the translation, as a real
    model asked by classify-4 or condense-4 would for a German question."""
    original = OfflineModel.generate

    def generate(self: OfflineModel, request: Any) -> Any:
        reply = original(self, request)
        if request.task not in tasks:
            return reply
        parsed = json.loads(reply.text)
        parsed.update(category="policies", language="de", search_query=TRANSLATION)
        return reply.model_copy(update={"text": json.dumps(parsed)})

    return generate


def test_the_classify_search_query_reaches_retrieval(
    runtime: LocalRuntime, searched: list[str]
) -> None:
    # Given a classify model that translates a German question (the sample has few German
    # documents)
    # When the question is asked
    with mock.patch.object(OfflineModel, "generate", _translating(("classify",))):
        status, body = ask(runtime, GERMAN)

    # Then retrieval searched with the question and with its translation
    assert status == 200
    assert GERMAN in searched
    assert TRANSLATION in searched
    assert body["language"] == "de"


def test_the_condense_search_query_reaches_retrieval(
    runtime: LocalRuntime, searched: list[str]
) -> None:
    # Given a conversation, and a condense model that translates the German follow-up
    _, first = ask(runtime, "What is your returns policy?")

    # When a follow-up is asked in German
    searched.clear()
    with mock.patch.object(OfflineModel, "generate", _translating(("condense",))):
        status, _ = ask(runtime, GERMAN, session_id=first["session_id"])

    # Then retrieval searched with the translation too
    assert status == 200
    assert TRANSLATION in searched


def test_a_null_search_query_searches_the_question_alone(
    runtime: LocalRuntime, searched: list[str]
) -> None:
    # When an English question is asked (the offline model never translates)
    status, _ = ask(runtime, "What is your returns policy?")

    # Then retrieval searched with the question only
    assert status == 200
    assert set(searched) == {"What is your returns policy?"}
