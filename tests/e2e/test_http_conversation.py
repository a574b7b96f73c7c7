"""A session remembers its turns: a follow-up is understood in context."""

from __future__ import annotations

from e2e.http_support import ChatApi, sources

FIRST = "What do you sell?"
FOLLOW_UP = "Which of them is cheapest?"


def test_a_follow_up_is_answered_in_the_context_of_its_session(api: ChatApi) -> None:
    # Given a session that asked what the shop sells
    api.ask(FIRST, session_id="hiker-1")

    # When the same session asks a follow-up that only makes sense in context
    body = api.ask(FOLLOW_UP, session_id="hiker-1")

    # Then the answer is about the cheapest product, from the price list
    assert "en-price-list.md" in sources(body)
    assert "Pika" in body["answer"]
    assert body["session_id"] == "hiker-1"


def test_the_session_issued_by_the_server_carries_the_conversation(api: ChatApi) -> None:
    # Given a first question asked without a session
    first = api.ask(FIRST)

    # When the follow-up is asked on the session the server issued
    body = api.ask(FOLLOW_UP, session_id=first["session_id"])

    # Then it is understood in context
    assert "en-price-list.md" in sources(body)
    assert "Pika" in body["answer"]


def test_the_same_follow_up_on_a_new_session_is_still_answered(api: ChatApi) -> None:
    # Given another session that already asked what the shop sells
    api.ask(FIRST, session_id="hiker-1")

    # When a new session opens with the follow-up wording, without any context
    body = api.ask(FOLLOW_UP, session_id="hiker-2")

    # Then it is answered all the same
    assert body["session_id"] == "hiker-2"
