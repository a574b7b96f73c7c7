"""The classification cascade: the categories of the top passages vote, a clear vote decides a
first turn without a model call, and anything unclear goes to the model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from concierge import wiring
from concierge.adapters.retrieval.port import SearchFilter
from concierge.config import CategorySettings
from concierge.knowledge import Catalog, CategoryInfo, IndexFile
from concierge.models.state import ClassifyInput, Passage
from concierge.observability import record_local_classification
from concierge.steps.cascade import LocalClassifier, vote
from concierge.steps.classify import classify
from fakes import ScriptedModel, route_of

CATALOG = Catalog(
    categories={
        name: CategoryInfo(description=name, source="titles", documents=3)
        for name in ("products", "pricing", "policies")
    },
    languages={"en": 98, "es": 43, "de": 18},
)


class Ranked:
    """A retriever whose ranking is fixed: the categories of its passages, best first."""

    def __init__(self, *categories: str) -> None:
        self.categories = categories
        self.filters: list[SearchFilter] = []

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        self.filters.append(search_filter)
        return [
            Passage(source=f"d{n}", title="T", text="x", category=c, language="en", score=1.0)
            for n, c in enumerate(self.categories[:limit])
        ]


def _passages(*categories: str) -> list[Passage]:
    return Ranked(*categories).search("q", SearchFilter(), 10)


def _request(question: str) -> ClassifyInput:
    return ClassifyInput(
        request_id="r", question=question, deadline_ms=int(time.time() * 1000) + 9000
    )


def test_the_first_passages_weigh_most() -> None:
    # Given passages of two categories, the first of one, the next three of the other
    passages = _passages("pricing", "products", "products", "products")

    # When they vote (weight 1/rank²)
    result = vote(passages)

    # Then the first passage outweighs the three after it, but not by much
    assert result.category == "pricing"
    assert result.confidence == pytest.approx(1 / (1 + 1 / 4 + 1 / 9 + 1 / 16))


def test_no_passages_is_no_vote() -> None:
    # When nothing was found
    result = vote([])

    # Then no category leads
    assert (result.category, result.confidence) == (None, 0.0)


def test_a_clear_vote_classifies_without_a_model_call() -> None:
    # Given an index whose top passages agree, and a model that must not be needed
    index = Ranked("policies", "policies", "pricing", "policies")
    model = ScriptedModel([])

    # When an English question is classified with the local classifier
    result = classify(
        _request("How long is the warranty on backpacks?"),
        CategorySettings(),
        route_of(model),
        catalog=CATALOG,
        local=LocalClassifier(index, threshold=0.9),
    )

    # Then the vote decided, with the language detected locally, and the usage says no model
    # was called; the search was unfiltered
    assert (result.category, result.language, result.search_query) == ("policies", "en", None)
    assert (result.usage.model, result.usage.llm_calls, result.usage.cost_usd) == ("local", 0, 0)
    assert model.requests == []
    assert index.filters == [SearchFilter()]


@pytest.mark.parametrize(
    ("question", "ranking", "why"),
    [
        ("What does shipping cost?", ("pricing", "policies", "policies"), "the vote is split"),
        ("What does shipping cost?", ("company", "company"), "the winner is not on the menu"),
        ("What does shipping cost?", (), "nothing was found"),
        ("Wie lange habe ich Garantie?", ("policies",) * 4, "German is hardly covered"),
        ("Cirrus 2?", ("products",) * 4, "no language could be detected"),
    ],
)
def test_an_unclear_question_goes_to_the_model(
    question: str, ranking: tuple[str, ...], why: str
) -> None:
    # Given an index that ranks `ranking`, and a classify model
    model = ScriptedModel(['{"category": "pricing", "language": "en"}'])

    # When the question is classified with the local classifier
    result = classify(
        _request(question),
        CategorySettings(),
        route_of(model),
        catalog=CATALOG,
        local=LocalClassifier(Ranked(*ranking), threshold=0.9),
    )

    # Then the model classified it
    assert len(model.requests) == 1, why
    assert result.usage.llm_calls == 1


def test_the_override_limits_what_the_vote_may_pick() -> None:
    # Given an index whose passages are all of a category the override leaves out
    model = ScriptedModel(['{"category": "pricing", "language": "en"}'])

    # When a question is classified with CONCIERGE_CATEGORIES naming two others
    classify(
        _request("How long is the warranty on backpacks?"),
        CategorySettings(categories=("pricing", "products")),
        route_of(model),
        catalog=CATALOG,
        local=LocalClassifier(Ranked("policies", "policies"), threshold=0.9),
    )

    # Then the model is asked: the vote's winner is not on the menu
    assert len(model.requests) == 1


def test_each_local_decision_and_hand_over_is_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics that are emitted
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Concierge")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)

    # When one first turn is decided locally and one handed to the model
    record_local_classification(decided=True)
    record_local_classification(decided=False)

    # Then ClassifiedLocally counts 1, then 0, under the classify step
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line
    ]
    assert [d["ClassifiedLocally"] for d in documents] == [[1.0], [0.0]]
    assert {d["step"] for d in documents} == {"classify"}


def test_the_composition_root_builds_the_cascade_over_the_local_index_only(
    monkeypatch: pytest.MonkeyPatch, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given the settings of a classify function over the sample index
    monkeypatch.setenv("CONCIERGE_INDEX_URI", str(sample_index[0]))
    wiring.reset()

    # When the local classifier is built: as configured, switched off, and with a Bedrock
    # knowledge base
    local = wiring.local_classifier()
    catalog = wiring.catalog("classify")
    monkeypatch.setenv("CONCIERGE_LOCAL_CLASSIFIER", "off")
    wiring.reset()
    off = wiring.local_classifier()
    monkeypatch.setenv("CONCIERGE_LOCAL_CLASSIFIER", "on")
    monkeypatch.setenv("CONCIERGE_RETRIEVER", "bedrock-kb")
    monkeypatch.setenv("CONCIERGE_KNOWLEDGE_BASE_ID", "KBTEST1234")
    wiring.reset()
    knowledge_base = wiring.local_classifier()
    wiring.reset()

    # Then only the local index gets one, and the menu is that index's
    assert local is not None
    assert catalog == sample_index[1].catalog()
    assert off is None
    assert knowledge_base is None
