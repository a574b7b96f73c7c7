"""search_query: the question in the knowledge base's main language, asked of classify and
condense for a question in a language the knowledge base hardly covers, validated, and kept only
where it can help."""

from __future__ import annotations

import json
import time

import pytest

from concierge.config import CategorySettings
from concierge.knowledge import Catalog, CategoryInfo
from concierge.models.state import Classification, ClassifyInput, CondenseInput
from concierge.steps.classify import classify
from concierge.steps.condense import condense
from fakes import ScriptedModel, route_of

CATALOG = Catalog(
    categories={
        "policies": CategoryInfo(description="returns, warranty", source="titles", documents=6),
    },
    languages={"en": 98, "es": 43, "de": 18},
)
GERMAN = "Wie lange habe ich Garantie auf einen Rucksack?"


def _classify(
    reply: dict[str, object], question: str = GERMAN, catalog: Catalog | None = CATALOG
) -> tuple[Classification, ScriptedModel]:
    model = ScriptedModel([json.dumps(reply)])
    result = classify(
        ClassifyInput(
            request_id="r", question=question, deadline_ms=int(time.time() * 1000) + 9000
        ),
        CategorySettings(categories=("policies",)),
        route_of(model),
        catalog=catalog,
    )
    return result, model


def test_a_question_in_a_language_the_knowledge_base_hardly_has_keeps_its_translation() -> None:
    # Given a model that classifies a German question and translates it (German has 18 of the
    # knowledge base's chunks, English 98)
    reply = {
        "category": "policies",
        "language": "de",
        "search_query": "  How long is the warranty?",
    }

    # When the question is classified
    result, model = _classify(reply)

    # Then the translation is kept, trimmed, and the prompt told the model the main language
    # and the covered ones
    assert result.search_query == "How long is the warranty?"
    assert "main language: en. Covered languages: en, es." in model.requests[0].prompt


def test_a_question_in_a_covered_language_gets_no_search_query() -> None:
    # Given a model that translates a Spanish question although Spanish is covered
    reply = {"category": "policies", "language": "es", "search_query": "Warranty?"}

    # When it is classified
    result, _ = _classify(reply, question="¿Cuánto dura la garantía?")

    # Then no search_query goes on: the question is searched as it is
    assert result.search_query is None


@pytest.mark.parametrize("search_query", [17, ["a"], "", "   ", "null", "x" * 501, GERMAN])
def test_an_unusable_search_query_is_dropped_without_a_re_ask(search_query: object) -> None:
    # Given a model whose classification is good but whose search_query is not a translation
    reply = {"category": "policies", "language": "de", "search_query": search_query}

    # When the question is classified
    result, model = _classify(reply)

    # Then the classification stands, in one call, without a search_query
    assert (result.category, result.language, result.search_query) == ("policies", "de", None)
    assert len(model.requests) == 1


def test_without_the_knowledge_base_s_languages_no_search_query_is_kept() -> None:
    # Given a catalog that records no languages (the model is told they are unknown)
    reply = {"category": "policies", "language": "de", "search_query": "Warranty?"}

    # When a question is classified
    result, model = _classify(reply, catalog=Catalog(categories=CATALOG.categories))

    # Then nothing says a translation would help: none is kept
    assert result.search_query is None
    assert "main language: unknown" in model.requests[0].prompt


def test_condense_carries_the_translation_of_the_standalone_question() -> None:
    # Given a condense model that rewrites a German follow-up and translates it
    model = ScriptedModel(
        [
            json.dumps(
                {
                    "question": GERMAN,
                    "category": "policies",
                    "language": "de",
                    "search_query": "How long is the warranty on a backpack?",
                }
            )
        ]
    )
    request = CondenseInput(
        request_id="r",
        question="Und auf einen Rucksack?",
        deadline_ms=int(time.time() * 1000) + 9000,
        history_items=[],
        cache_scope="scope",
    )

    # When it is condensed
    result = condense(request, [], CategorySettings(), route_of(model), 500, catalog=CATALOG)

    # Then the understanding carries the translation for retrieval
    assert result.search_query == "How long is the warranty on a backpack?"
