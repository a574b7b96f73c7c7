"""POST /chat answers with exactly the public fields; sessions and request ids."""

from __future__ import annotations

import pytest
from e2e.http_support import SESSION_ID, ChatApi, assert_chat_reply


def test_an_answer_has_exactly_the_public_fields(api: ChatApi) -> None:
    # Given a question the sample knowledge base answers
    # When it is asked
    reply = api.chat("What do you sell?")

    # Then the body has exactly the documented fields, typed as documented
    body = assert_chat_reply(reply)
    assert body["citations"], "a grounded answer cites its sources"
    assert body["cached"] is False
    assert body["usage"]["llm_calls"] >= 1


def test_without_a_session_id_a_new_session_is_issued_per_request(api: ChatApi) -> None:
    # Given two requests that name no session
    # When both are asked
    first = api.ask("What do you sell?")
    second = api.ask("How many years of guarantee do I get on a tent?")

    # Then each is issued its own session id in the documented format
    assert SESSION_ID.match(first["session_id"])
    assert SESSION_ID.match(second["session_id"])
    assert first["session_id"] != second["session_id"]


@pytest.mark.parametrize(
    "session_id",
    ["a", "session-42_B", "Z" * 128],
    ids=["one-char", "letters-digits-dash-underscore", "128-chars"],
)
def test_a_given_session_id_is_echoed_back(api: ChatApi, session_id: str) -> None:
    # Given a request naming a valid session
    # When it is asked
    body = api.ask("What do you sell?", session_id=session_id)

    # Then the answer belongs to that very session
    assert body["session_id"] == session_id


def test_every_request_gets_its_own_request_id_echoed_in_the_header(api: ChatApi) -> None:
    # Given two identical requests
    first = api.chat("What do you sell?")
    second = api.chat("What do you sell?")

    # Then each has a request id, the same in the x-request-id header and the body
    first_body, second_body = assert_chat_reply(first), assert_chat_reply(second)
    assert first.headers["x-request-id"] == first_body["request_id"]
    assert second.headers["x-request-id"] == second_body["request_id"]
    # And no two requests share one
    assert first_body["request_id"] != second_body["request_id"]


@pytest.mark.parametrize("letter", ["a", "ü"], ids=["ascii", "non-ascii"])
def test_a_question_of_exactly_4000_characters_is_accepted(api: ChatApi, letter: str) -> None:
    # Given a question at the length limit (characters, not bytes)
    question = letter * 4000

    # When it is asked
    reply = api.chat(question)

    # Then it is answered, not rejected
    assert_chat_reply(reply)
