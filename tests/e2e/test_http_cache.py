"""First-turn answers are cached; follow-ups and not-found answers are not."""

from __future__ import annotations

import pytest
from e2e.http_support import NOT_FOUND_ANSWER, ChatApi

QUESTION = "What do you sell?"


@pytest.mark.parametrize(
    ("first_session", "second_session"),
    [(None, None), ("walker-a", "walker-b")],
    ids=["no-session", "different-sessions"],
)
def test_a_repeated_first_turn_question_is_served_from_the_cache(
    api: ChatApi, first_session: str | None, second_session: str | None
) -> None:
    # Given a first-turn question that was answered once
    first = api.ask(QUESTION, session_id=first_session)
    assert first["cached"] is False

    # When it is asked again as the first turn of another conversation
    second = api.ask(QUESTION, session_id=second_session)

    # Then the same answer comes from the cache, without any model call
    assert second["cached"] is True
    assert second["usage"]["llm_calls"] == 0
    assert second["usage"]["cost_usd"] == 0
    assert second["answer"] == first["answer"]
    assert second["citations"] == first["citations"]
    assert (second["category"], second["language"]) == (first["category"], first["language"])


@pytest.mark.parametrize(
    "variant",
    ["what do you sell?", "WHAT DO YOU SELL?", "  What   do you\tsell?  ", "What do you sell"],
    ids=["lower-case", "upper-case", "extra-whitespace", "no-question-mark"],
)
def test_a_question_differing_only_in_case_spacing_or_question_mark_hits_the_cache(
    api: ChatApi, variant: str
) -> None:
    # Given a first-turn question that was answered once
    first = api.ask(QUESTION)

    # When it is asked again with only case, whitespace or the question mark changed
    second = api.ask(variant)

    # Then the cached answer is served
    assert second["cached"] is True
    assert second["usage"]["llm_calls"] == 0
    assert second["answer"] == first["answer"]


def test_a_follow_up_is_not_served_from_the_first_turn_cache(api: ChatApi) -> None:
    # Given a question whose first-turn answer is cached
    api.ask(QUESTION)
    assert api.ask(QUESTION)["cached"] is True
    # And a session that already has a turn
    api.ask("How many years of guarantee do I get on a tent?", session_id="walker-c")

    # When that session asks the same wording as a follow-up
    follow_up = api.ask(QUESTION, session_id="walker-c")

    # Then it is answered afresh, in its context
    assert follow_up["cached"] is False
    assert follow_up["usage"]["llm_calls"] >= 1


def test_a_follow_up_answer_is_not_cached_for_later_first_turns(api: ChatApi) -> None:
    # Given a follow-up asked within a session
    api.ask(QUESTION, session_id="walker-d")
    api.ask("Which of them is cheapest?", session_id="walker-d")

    # When a new conversation opens with the same wording
    fresh = api.ask("Which of them is cheapest?")

    # Then it is not served the other session's answer from the cache
    assert fresh["cached"] is False


def test_a_question_outside_the_knowledge_base_gets_the_could_not_find_answer(
    api: ChatApi,
) -> None:
    # When a question nothing in the knowledge base answers is asked
    body = api.ask("What is the capital of Peru?")

    # Then the English could-not-find answer comes back, citing nothing
    assert NOT_FOUND_ANSWER in body["answer"].lower()
    assert body["citations"] == []
    assert body["language"] == "en"


def test_a_could_not_find_answer_is_not_cached(api: ChatApi) -> None:
    # Given a question nothing in the knowledge base answers, asked once
    first = api.ask("What is the capital of Peru?")

    # When it is asked again
    second = api.ask("What is the capital of Peru?")

    # Then neither answer came from the cache
    assert first["cached"] is False
    assert second["cached"] is False
