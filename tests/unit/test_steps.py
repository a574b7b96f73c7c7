import time

import pytest

from concierge.adapters.dynamodb.history import turns_from_items
from concierge.adapters.retrieval.port import SearchFilter
from concierge.cache_keys import cache_key, cache_scope
from concierge.config import CategorySettings
from concierge.errors import (
    BudgetExceededError,
    ModelInvocationError,
    ModelReplyError,
    ModelThrottledError,
    ModelTimeoutError,
)
from concierge.models.http import Guardrail
from concierge.models.state import (
    AnswerInput,
    ClassifyInput,
    CondenseInput,
    HistoryTurn,
    Passage,
    RetrieveInput,
    Understanding,
)
from concierge.prompt_library import load_prompt
from concierge.steps.answer import answer, cite
from concierge.steps.classify import classify
from concierge.steps.condense import condense, transcript
from concierge.steps.retrieve import retrieve
from fakes import FlakyModel, ScriptedModel, route_of

SETTINGS = CategorySettings(categories=("products", "pricing"))


def _deadline(seconds: float = 10) -> int:
    return int((time.time() + seconds) * 1000)


def _passage(source: str, text: str = "Some text.", title: str = "T") -> Passage:
    return Passage(
        source=source, title=title, text=text, category="products", language="en", score=1.0
    )


# -- classify ---------------------------------------------------------------------------------
def test_classify_accepts_valid_model_output() -> None:
    # Given a model that replies with a valid classification, in capitals
    model = ScriptedModel(['{"category": "Pricing", "language": "ES"}'])

    # When a question is classified
    result = classify(
        ClassifyInput(request_id="r", question="¿Cuánto?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )

    # Then the category and language are taken, lower-cased, from one model call
    assert (result.category, result.language) == ("pricing", "es")
    assert result.usage.llm_calls == 1


def test_classify_finds_json_wrapped_in_prose() -> None:
    # Given a model that wraps its JSON in chatter
    model = ScriptedModel(['Sure! {"category": "products", "language": "en"} Hope that helps.'])

    # When a question is classified
    result = classify(
        ClassifyInput(request_id="r", question="Tents?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )

    # Then the JSON inside is used
    assert result.category == "products"


@pytest.mark.parametrize(
    "reply",
    ["not json at all", '{"category": 3}', '{"category": "weather", "language": "english"}', "{"],
)
def test_invalid_model_output_falls_back_instead_of_failing(reply: str) -> None:
    # Given a model that gives the same unusable reply twice, and a Spanish question
    model = ScriptedModel([reply, reply])
    question = "¿Dónde está la tienda de Valencia?"

    # When the question is classified
    result = classify(
        ClassifyInput(request_id="r", question=question, deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )

    # Then after one re-ask it falls back to the default category and the language detected
    # from the question itself
    assert result.category == "general"
    assert result.language == "es"
    assert (result.usage.repairs, result.usage.defaulted, result.usage.llm_calls) == (1, True, 2)


def test_an_unusable_reply_is_re_asked_once_with_the_problem() -> None:
    # Given a model whose first reply names an unknown category and whose second is valid
    model = ScriptedModel(
        ['{"category": "weather", "language": "en"}', '{"category": "pricing", "language": "en"}']
    )

    # When a question is classified
    result = classify(
        ClassifyInput(request_id="r", question="How much?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),
    )

    # Then the second reply is used, and the re-ask told the model what was wrong
    assert result.category == "pricing"
    assert (result.usage.repairs, result.usage.defaulted) == (1, False)
    assert "category must be one of products, pricing" in model.requests[1].prompt


def test_no_model_call_is_started_after_the_deadline() -> None:
    # Given a request whose deadline has passed
    model = ScriptedModel(["{}"])
    request = ClassifyInput(request_id="r", question="q", deadline_ms=_deadline(-1))

    # When / Then classifying it exceeds the budget
    with pytest.raises(BudgetExceededError):
        classify(request, SETTINGS, route_of(model))

    # And the model was never called
    assert model.requests == []


def test_the_remaining_budget_is_passed_to_the_model() -> None:
    # Given a request with seven seconds left
    model = ScriptedModel(['{"category": "products", "language": "en"}'])
    request = ClassifyInput(request_id="r", question="q", deadline_ms=_deadline(7))

    # When it is classified
    classify(request, SETTINGS, route_of(model))

    # Then the model call's timeout is what is left of the seven seconds
    assert 6 < model.requests[0].timeout_s <= 7


# -- condense ---------------------------------------------------------------------------------
def _item(question: str, answer_text: str) -> dict[str, dict[str, str]]:
    return {"question": {"S": question}, "answer": {"S": answer_text}}


def test_history_items_newest_first_become_turns_oldest_first() -> None:
    # Given the Query task's items, newest first, one without an answer
    items = [_item("q3", "a3"), {"question": {"S": "q2"}}, _item("q1", "a1")]

    # When they become turns
    turns = turns_from_items(items)

    # Then they read oldest first, and the incomplete one is skipped
    assert [turn.question for turn in turns] == ["q1", "q3"]


CONDENSE = CategorySettings(categories=("products", "pricing"))
HISTORY_TOKENS = 1_200
SCOPE = cache_scope("kb1", "p1", "scripted")


def _follow_up(question: str, *items: dict[str, dict[str, str]]) -> CondenseInput:
    return CondenseInput(
        request_id="r",
        question=question,
        deadline_ms=_deadline(),
        history_items=list(items),
        cache_scope=SCOPE,
    )


def _condense(request: CondenseInput, model: ScriptedModel) -> Understanding:
    history = turns_from_items(request.history_items)
    return condense(request, history, CONDENSE, route_of(model), HISTORY_TOKENS)


def test_condense_rewrites_and_classifies_in_one_call_and_keys_the_standalone_question() -> None:
    # Given a model that rewrites the follow-up and classifies it
    model = ScriptedModel(
        ['{"question": "Which tent is the cheapest?", "category": "pricing", "language": "en"}']
    )

    # When a follow-up to a question about tents is condensed
    result = _condense(
        _follow_up("Which is cheapest?", _item("Do you sell tents?", "Yes.")),
        model,
    )

    # Then it becomes the standalone question, classified, in one call that saw the history
    assert (result.question, result.category, result.language) == (
        "Which tent is the cheapest?",
        "pricing",
        "en",
    )
    assert "Do you sell tents?" in model.requests[0].prompt
    assert result.usage.llm_calls == 1

    # And its cache key is that of the standalone question asked as a first turn: one cache
    # serves both
    assert result.cache_key == cache_key("which tent is the cheapest", "en", SCOPE)
    assert result.cache_language == "en"


def test_an_empty_rewrite_keeps_the_original_question() -> None:
    # Given a model that rewrites the question as blanks
    model = ScriptedModel(['{"question": "  ", "category": "products", "language": "en"}'])

    # When a follow-up is condensed
    result = _condense(_follow_up("And that?", _item("q", "a")), model)

    # Then the question as asked is kept, and keyed
    assert result.question == "And that?"
    assert result.cache_key == cache_key("And that?", "en", SCOPE)


def test_unusable_condense_output_is_re_asked_once_then_defaulted_field_by_field() -> None:
    # Given a model that replies without JSON, then with a question but no classification
    model = ScriptedModel(["Sure! Here you go.", '{"question": "¿Y cuánto cuesta la Cirrus 2?"}'])

    # When a Spanish follow-up is condensed
    result = _condense(
        _follow_up("¿Y cuánto cuesta?", _item("¿Qué es la Cirrus 2?", "Una tienda.")),
        model,
    )

    # Then the model is asked again, told its first reply could not be used
    assert len(model.requests) == 2
    assert "could not be used" in model.requests[1].prompt

    # And with nothing usable after the re-ask: the follow-up as asked, default category,
    # detected language — an answer all the same
    assert (result.question, result.category, result.language) == (
        "¿Y cuánto cuesta?",
        "general",
        "es",
    )
    assert (result.usage.llm_calls, result.usage.repairs, result.usage.defaulted) == (2, 1, True)


ROUTE_FAILURES = {
    "throttled": [ModelThrottledError("t"), ModelThrottledError("t")],
    "timed-out": [ModelTimeoutError("slow"), ModelTimeoutError("slow")],
    "unreadable": [ModelReplyError("not JSON"), ModelReplyError("not JSON")],
    "refused": [ModelInvocationError("access denied")],
}


@pytest.mark.parametrize("errors", ROUTE_FAILURES.values(), ids=ROUTE_FAILURES.keys())
def test_a_failed_classify_route_degrades_to_the_safe_defaults(errors: list[Exception]) -> None:
    # Given a classify route whose only model fails every attempt
    model = FlakyModel(list(errors), spec="cheap")

    # When a German question is classified
    result = classify(
        ClassifyInput(request_id="r", question="Was kostet das Zelt?", deadline_ms=_deadline()),
        SETTINGS,
        route_of(model),  # type: ignore[arg-type]
    )

    # Then the request goes on: default category, detected language, no translation, counted
    assert (result.category, result.language, result.search_query) == ("general", "de", None)
    assert result.usage.failed and result.usage.defaulted
    assert result.usage.llm_calls == 0


def test_a_failed_condense_route_keeps_the_question_as_asked() -> None:
    # Given a condense route whose model stays throttled
    model = FlakyModel([ModelThrottledError("t"), ModelThrottledError("t")], spec="cheap")
    history = turns_from_items([_item("Do you sell tents?", "Yes.")])
    request = _follow_up("Which is cheapest?", _item("Do you sell tents?", "Yes."))

    # When the follow-up is condensed
    result = condense(request, history, CONDENSE, route_of(model), HISTORY_TOKENS)  # type: ignore[arg-type]

    # Then it is the question as asked, keyed as such, with the defaults, and counted
    assert (result.question, result.category, result.language) == (
        "Which is cheapest?",
        "general",
        "en",
    )
    assert result.cache_key == cache_key("Which is cheapest?", "en", SCOPE)
    assert result.usage.failed


def test_a_spent_budget_still_stops_classify() -> None:
    # Given a working model but no time left
    model = ScriptedModel(['{"category": "pricing", "language": "en"}'])

    # When / Then the step fails rather than defaulting: the answer could not be written either
    with pytest.raises(BudgetExceededError):
        classify(
            ClassifyInput(request_id="r", question="How much?", deadline_ms=_deadline(0.1)),
            SETTINGS,
            route_of(model),
        )


def test_the_condense_transcript_keeps_the_newest_turns_that_fit_the_token_budget() -> None:
    # Given five long turns
    turns = [HistoryTurn(question=f"question {n}", answer="word " * 100) for n in range(5)]

    # When the transcript is made with room for about two of them, and with room for none
    kept = transcript(turns, token_budget=300)
    tiny = transcript(turns, token_budget=10)

    # Then the newest turns are kept and the oldest dropped
    assert "question 4" in kept and "question 3" in kept
    assert "question 0" not in kept

    # And the newest turn is kept even when it alone is over the budget
    assert "question 4" in tiny


# -- retrieve ---------------------------------------------------------------------------------
def test_retrieve_stops_widening_the_filter_when_the_budget_is_nearly_spent() -> None:
    # Given an index that finds nothing, and a request with two seconds left
    searched: list[SearchFilter] = []

    class Empty:
        def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
            searched.append(search_filter)
            return []

    request = RetrieveInput(
        request_id="r", question="q", category="products", language="en", deadline_ms=_deadline(2)
    )

    # When passages are retrieved
    result = retrieve(request, Empty(), limit=4)

    # Then none are found, after the first round trip (the classification's filter, and no
    # filter to check it) and no relaxed search that could outlast the request
    assert result.passages == []
    assert searched == [SearchFilter(category="products", language="en"), SearchFilter()]


class _Index:
    def __init__(self, hits_for: dict[SearchFilter, list[Passage]]) -> None:
        self.hits_for = hits_for
        self.filters: list[SearchFilter] = []

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        self.filters.append(search_filter)
        return self.hits_for.get(search_filter, [])


def test_retrieve_uses_the_classification_as_filter() -> None:
    # Given an index with a passage under the question's category and language
    exact = SearchFilter(category="pricing", language="en")
    index = _Index({exact: [_passage("prices.md")]})

    # When passages are retrieved for a question classified that way
    result = retrieve(
        RetrieveInput(
            request_id="r", question="q", category="pricing", language="en", deadline_ms=_deadline()
        ),
        index,
        4,
    )

    # Then the passage is found with both as the filter
    assert result.filter_used == "category+language"
    assert [p.source for p in result.passages] == ["prices.md"]


def test_retrieve_relaxes_a_filter_that_finds_nothing() -> None:
    # Given an index with a passage under the language only
    index = _Index({SearchFilter(language="es"): [_passage("es-precios.md")]})

    # When passages are retrieved for a question with a category as well
    result = retrieve(
        RetrieveInput(
            request_id="r", question="q", category="general", language="es", deadline_ms=_deadline()
        ),
        index,
        4,
    )

    # Then the full filter is tried first, and the passage is found by the language alone
    assert result.filter_used == "language"
    assert index.filters[0] == SearchFilter(category="general", language="es")


def test_retrieve_keeps_the_filters_passages_when_the_search_without_it_agrees() -> None:
    # Given an index whose best passage overall is in the question's category
    exact = SearchFilter(category="pricing", language="en")
    index = _Index(
        {
            exact: [_passage("prices.md"), _passage("club.md")],
            SearchFilter(): [_passage("prices.md"), _passage("returns.md")],
        }
    )

    # When passages are retrieved for a question classified that way
    result = retrieve(_retrieve_input("pricing", "en"), index, 4)

    # Then only the filter's passages are given: nothing from outside it
    assert [p.source for p in result.passages] == ["prices.md", "club.md"]
    assert result.widened == 0


def test_a_misclassified_question_still_gets_the_passages_the_filter_hid() -> None:
    # Given an index whose best passages overall are outside the question's (wrong) category
    index = _Index(
        {
            SearchFilter(category="products", language="en"): [
                _passage(f"product-{n}.md") for n in range(4)
            ],
            SearchFilter(): [
                _passage("warranty.md"),
                _passage("product-2.md"),
                _passage("returns.md"),
                _passage("repairs.md"),
            ],
        }
    )

    # When passages are retrieved for a question classified under products
    result = retrieve(_retrieve_input("products", "en"), index, 4)

    # Then the filter's best three passages keep the lead, and the last place goes to the best
    # of those it hid
    assert [p.source for p in result.passages] == [
        "product-0.md",
        "product-1.md",
        "product-2.md",
        "warranty.md",
    ]
    assert result.filter_used == "category+language"
    assert result.widened == 1


def test_more_passages_leave_more_places_to_what_the_filter_hid() -> None:
    # Given an index whose best passages overall are outside the question's (wrong) category
    index = _Index(
        {
            SearchFilter(category="products", language="en"): [
                _passage(f"product-{n}.md") for n in range(8)
            ],
            SearchFilter(): [
                _passage("warranty.md"),
                _passage("product-2.md"),
                _passage("returns.md"),
            ],
        }
    )

    # When eight passages are retrieved
    result = retrieve(_retrieve_input("products", "en"), index, 8)

    # Then the last quarter goes to the best of those the filter hid (one it found too is not
    # given twice)
    assert [p.source for p in result.passages][-2:] == ["warranty.md", "returns.md"]
    assert result.widened == 2


def test_when_no_filter_finds_anything_the_unfiltered_search_is_used_without_another_call() -> None:
    # Given an index that has passages only for a search without a filter
    index = _Index({SearchFilter(): [_passage("faq.md")]})

    # When passages are retrieved
    result = retrieve(_retrieve_input("products", "en"), index, 4)

    # Then the filter and its language are tried, and the first round trip's unfiltered search
    # gives the passages (no third search)
    assert [p.source for p in result.passages] == ["faq.md"]
    assert result.filter_used == "none"
    assert index.filters == [
        SearchFilter(category="products", language="en"),
        SearchFilter(),
        SearchFilter(language="en"),
    ]


def _retrieve_input(category: str, language: str) -> RetrieveInput:
    return RetrieveInput(
        request_id="r", question="q", category=category, language=language, deadline_ms=_deadline()
    )


# -- answer -----------------------------------------------------------------------------------
def test_no_passages_means_a_localised_no_answer_without_a_model_call() -> None:
    # Given a Spanish question without any passages
    model = ScriptedModel([])
    request = AnswerInput(
        request_id="r", question="q", language="es", passages=[], deadline_ms=_deadline()
    )

    # When it is answered
    result = answer(request, route_of(model))

    # Then the answer says, in Spanish, that nothing was found; it is not cached, cites
    # nothing, and no model was called
    assert result.answer.startswith("No he encontrado")
    assert result.cacheable is False
    assert result.citations == []
    assert model.requests == []


def test_the_model_saying_no_answer_is_not_cached() -> None:
    # Given a model that finds no answer in the passages
    model = ScriptedModel(["NO_ANSWER"])

    # When a German question is answered
    result = answer(
        AnswerInput(
            request_id="r",
            question="q",
            language="de",
            passages=[_passage("a.md")],
            deadline_ms=_deadline(),
        ),
        route_of(model),
    )

    # Then the user is told so, in German, and the answer is not cached
    assert result.answer.startswith("Dazu habe ich")
    assert result.cacheable is False


def test_the_answer_is_asked_for_in_the_users_language() -> None:
    # Given a model and a Spanish question
    model = ScriptedModel(["Sí. [1]"])

    # When the question is answered
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

    # Then the model's instructions name Spanish
    assert '"es"' in model.requests[0].system


def test_citations_follow_the_passages_relevance_not_the_order_of_mention() -> None:
    # Given four passages in retrieval order, two of them from the same document
    passages = [_passage("a.md"), _passage("b.md"), _passage("b.md"), _passage("c.md")]

    # When an answer marks them out of order, the same document twice, and one that does not
    # exist
    text, citations, problems = cite("First [3]. Second [2]. Third [1]. Bogus [9].", passages)

    # Then each marked document is listed once, best-ranked first, the markers renumbered to
    # match, and the bogus one dropped and reported
    assert [c.source for c in citations] == ["a.md", "b.md"]
    assert text == "First [2]. Second [2]. Third [1]. Bogus."
    assert problems == ("unknown_citation",)


def test_a_passage_the_answer_does_not_mark_is_not_cited() -> None:
    # Given three passages, the best-ranked one not used by the answer
    passages = [_passage("a.md"), _passage("b.md"), _passage("c.md")]

    # When the answer marks the third and then the second
    text, citations, _ = cite("From c [3]. From b [2].", passages)

    # Then only those two are cited, the second passage first, and the first passage nowhere
    assert [c.source for c in citations] == ["b.md", "c.md"]
    assert text == "From c [2]. From b [1]."


def test_a_document_is_cited_once_with_its_best_ranked_marked_passage() -> None:
    # Given two passages of one document with different text, and another document between them
    passages = [
        _passage("x.md"),
        _passage("a.md", text="The better passage."),
        _passage("a.md", text="The weaker passage."),
    ]

    # When the answer marks the weaker passage first, then the better one side by side with it
    text, citations, _ = cite("It says so [3][2].", passages)

    # Then the document is cited once, its snippet from the better-ranked passage, one marker
    assert [(c.source, c.snippet) for c in citations] == [("a.md", "The better passage.")]
    assert text == "It says so [1]."


def test_an_answer_without_markers_cites_nothing() -> None:
    # Given two passages
    passages = [_passage("a.md"), _passage("b.md")]

    # When an answer without any marker is cited
    text, citations, problems = cite("Plain answer.", passages)

    # Then no citation is invented: the answer stands uncited, and says so
    assert (text, citations, problems) == ("Plain answer.", [], ("uncited",))


def test_a_guardrail_refusal_is_shown_but_never_cached() -> None:
    # Given a model whose guardrail refuses the answer
    class Guarded(ScriptedModel):
        def generate(self, request):  # type: ignore[no-untyped-def]
            return (
                super()
                .generate(request)
                .model_copy(update={"guardrail": Guardrail(action="blocked", source="output")})
            )

    # When a question is answered
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

    # Then the user reads our refusal in their language (not the guardrail's own message),
    # which is neither cached nor cited, and the intervention is reported
    assert result.answer == load_prompt("answer").refused["en"]
    assert (result.cacheable, result.citations) == (False, [])
    assert result.guardrail == Guardrail(action="blocked", source="output")
