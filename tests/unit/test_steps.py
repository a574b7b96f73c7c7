import time

import pytest

from concierge.adapters.retrieval.port import SearchFilter
from concierge.config import ClassifySettings, CondenseSettings
from concierge.errors import BudgetExceededError
from concierge.models.state import AnswerInput, ClassifyInput, CondenseInput, Passage, RetrieveInput
from concierge.steps.answer import answer, cite
from concierge.steps.classify import classify
from concierge.steps.condense import condense, history_from_items
from concierge.steps.retrieve import retrieve
from fakes import ScriptedModel, route_of

SETTINGS = ClassifySettings(classify_model="scripted", categories=("products", "pricing"))


def _deadline(seconds: float = 10) -> int:
    return int((time.time() + seconds) * 1000)


def _passage(source: str, text: str = "Some text.", title: str = "T") -> Passage:
    return Passage(
        source=source, title=title, text=text, category="products", language="en", score=1.0
    )


# -- classify ---------------------------------------------------------------------------------
def test_classify_accepts_valid_model_output() -> None:
    model = ScriptedModel(
        ['{"category": "Pricing", "language": "ES", "translated_question": "How much?"}']
    )
    result = classify(
        ClassifyInput(request_id="r", question="¿Cuánto?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )
    assert (result.category, result.language, result.translated_question) == (
        "pricing",
        "es",
        "How much?",
    )
    assert result.usage.llm_calls == 1


def test_classify_finds_json_wrapped_in_prose() -> None:
    model = ScriptedModel(['Sure! {"category": "products", "language": "en"} Hope that helps.'])
    result = classify(
        ClassifyInput(request_id="r", question="Tents?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )
    assert result.category == "products"


@pytest.mark.parametrize(
    "reply",
    ["not json at all", '{"category": 3}', '{"category": "weather", "language": "english"}', "{"],
)
def test_invalid_model_output_falls_back_instead_of_failing(reply: str) -> None:
    question = "¿Dónde está la tienda de Valencia?"
    result = classify(
        ClassifyInput(request_id="r", question=question, deadline_ms=_deadline()),
        SETTINGS,
        route_of(ScriptedModel([reply, reply])),
    )
    assert result.category == "general"
    assert result.language == "es"  # detected from the question itself
    assert (result.usage.repairs, result.usage.defaulted, result.usage.llm_calls) == (1, True, 2)


def test_an_unusable_reply_is_re_asked_once_with_the_problem() -> None:
    model = ScriptedModel(
        ['{"category": "weather", "language": "en"}', '{"category": "pricing", "language": "en"}']
    )
    result = classify(
        ClassifyInput(request_id="r", question="How much?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )
    assert result.category == "pricing"
    assert (result.usage.repairs, result.usage.defaulted) == (1, False)
    assert "category must be one of products, pricing" in model.requests[1].prompt


def test_no_model_call_is_started_after_the_deadline() -> None:
    model = ScriptedModel(["{}"])
    with pytest.raises(BudgetExceededError):
        classify(
            ClassifyInput(request_id="r", question="q", deadline_ms=_deadline(-1)),
            SETTINGS,
            route_of(model),
        )
    assert model.requests == []


def test_the_remaining_budget_is_passed_to_the_model() -> None:
    model = ScriptedModel(['{"category": "products", "language": "en"}'])
    classify(
        ClassifyInput(request_id="r", question="q", deadline_ms=_deadline(7)),
        SETTINGS,
        route_of(model),
    )
    assert 6 < model.requests[0].timeout_s <= 7


# -- condense ---------------------------------------------------------------------------------
def _item(question: str, answer_text: str) -> dict[str, dict[str, str]]:
    return {"question": {"S": question}, "answer": {"S": answer_text}}


def test_history_items_newest_first_become_turns_oldest_first_within_the_limit() -> None:
    items = [_item("q3", "a3"), _item("q2", "a2"), _item("q1", "a1")]
    assert [t.question for t in history_from_items(items, limit=2)] == ["q2", "q3"]


def test_condense_without_history_makes_no_model_call() -> None:
    model = ScriptedModel([])
    result = condense(
        CondenseInput(request_id="r", question="What?", deadline_ms=_deadline(), history_items=[]),
        CondenseSettings(condense_model="scripted"),
        route_of(model),
    )
    assert result.question == "What?"
    assert result.usage.llm_calls == 0


def test_condense_sends_the_conversation_and_uses_the_rewrite() -> None:
    model = ScriptedModel(['"Which tent is the cheapest?"'])
    result = condense(
        CondenseInput(
            request_id="r",
            question="Which is cheapest?",
            deadline_ms=_deadline(),
            history_items=[_item("Do you sell tents?", "Yes.")],
        ),
        CondenseSettings(condense_model="scripted"),
        route_of(model),
    )
    assert result.question == "Which tent is the cheapest?"
    assert "Do you sell tents?" in model.requests[0].prompt


def test_an_empty_rewrite_keeps_the_original_question() -> None:
    result = condense(
        CondenseInput(
            request_id="r",
            question="And that?",
            deadline_ms=_deadline(),
            history_items=[_item("q", "a")],
        ),
        CondenseSettings(condense_model="scripted"),
        route_of(ScriptedModel(["   "])),
    )
    assert result.question == "And that?"


# -- retrieve ---------------------------------------------------------------------------------
class _Index:
    def __init__(self, hits_for: dict[SearchFilter, list[Passage]]) -> None:
        self.hits_for = hits_for
        self.filters: list[SearchFilter] = []

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        self.filters.append(search_filter)
        return self.hits_for.get(search_filter, [])


def test_retrieve_uses_the_classification_as_filter() -> None:
    exact = SearchFilter(category="pricing", language="en")
    index = _Index({exact: [_passage("prices.md")]})
    result = retrieve(
        RetrieveInput(
            request_id="r", question="q", category="pricing", language="en", deadline_ms=0
        ),
        index,
        4,
    )
    assert result.filter_used == "category+language"
    assert [p.source for p in result.passages] == ["prices.md"]


def test_retrieve_relaxes_a_filter_that_finds_nothing() -> None:
    index = _Index({SearchFilter(language="es"): [_passage("es-precios.md")]})
    result = retrieve(
        RetrieveInput(
            request_id="r", question="q", category="general", language="es", deadline_ms=0
        ),
        index,
        4,
    )
    assert result.filter_used == "language"
    assert index.filters[0] == SearchFilter(category="general", language="es")


# -- answer -----------------------------------------------------------------------------------
def test_no_passages_means_a_localised_no_answer_without_a_model_call() -> None:
    model = ScriptedModel([])
    result = answer(
        AnswerInput(
            request_id="r", question="q", language="es", passages=[], deadline_ms=_deadline()
        ),
        route_of(model),
    )
    assert result.answer.startswith("No he encontrado")
    assert result.cacheable is False
    assert result.citations == []
    assert model.requests == []


def test_the_model_saying_no_answer_is_not_cached() -> None:
    result = answer(
        AnswerInput(
            request_id="r",
            question="q",
            language="de",
            passages=[_passage("a.md")],
            deadline_ms=_deadline(),
        ),
        route_of(ScriptedModel(["NO_ANSWER"])),
    )
    assert result.answer.startswith("Dazu habe ich")
    assert result.cacheable is False


def test_the_answer_is_asked_for_in_the_users_language() -> None:
    model = ScriptedModel(["Sí. [1]"])
    answer(
        AnswerInput(
            request_id="r",
            question="q",
            language="es",
            passages=[_passage("a.md")],
            deadline_ms=_deadline(),
        ),
        route_of(model),
    )
    assert '"es"' in model.requests[0].system


def test_citations_are_the_cited_documents_renumbered_in_order_of_mention() -> None:
    passages = [_passage("a.md"), _passage("b.md"), _passage("b.md"), _passage("c.md")]
    text, citations = cite("First [2]. Second [3]. Third [1]. Bogus [9].", passages)
    assert [c.source for c in citations] == ["b.md", "a.md"]
    assert text == "First [1]. Second [1]. Third [2]. Bogus."


def test_an_answer_without_markers_cites_the_top_passage() -> None:
    _, citations = cite("Plain answer.", [_passage("a.md"), _passage("b.md")])
    assert [c.source for c in citations] == ["a.md"]


def test_a_guardrail_refusal_is_shown_but_never_cached() -> None:
    class Guarded(ScriptedModel):
        def generate(self, request):  # type: ignore[no-untyped-def]
            return super().generate(request).model_copy(update={"refused": True})

    result = answer(
        AnswerInput(
            request_id="r",
            question="q",
            language="en",
            passages=[_passage("a.md")],
            deadline_ms=_deadline(),
        ),
        route_of(Guarded(["I can't help with that."])),
    )
    assert result.answer == "I can't help with that."
    assert (result.cacheable, result.citations) == (False, [])
