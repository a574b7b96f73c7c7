"""Daily budgets over HTTP, in both modes of the local server (`users` is parametrized by the
auth mode; its users may spend DAILY_TOKEN_LIMIT tokens a day, and a request reserves
REQUEST_TOKEN_RESERVE until it settles): a user over the limit gets 429 `budget_exceeded` with
`Retry-After`, is still served from the cache, and GET /me/usage tells what was spent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from e2e.http_support import (
    ChatApi,
    Reply,
    UsersService,
    assert_chat_reply,
    assert_error_reply,
    execution_output,
    items_of,
    turns_of,
)

CACHED = "What do you sell?"
# Distinct first turns, none of them CACHED: each one a cache miss that spends tokens.
NEW_QUESTIONS = (
    "How many years of guarantee do I get on a tent?",
    "What does delivery to Germany cost and how long does it take?",
    "How heavy is the Cirrus 2 and how big is the floor inside?",
    "What are the comfort and limit temperatures of the down bag?",
    "What do you charge to fix a broken zip slider?",
    "How should I wash my down sleeping bag?",
    "When is your Valencia store open?",
    "Can I return a stove I already used once?",
    "How long does it take to get my money back after I send something back?",
    "Does the Cirrus 2 come with a groundsheet to put underneath?",
    "Can I change the delivery address after I've ordered?",
    "Do you mend gear from other brands as well?",
)


def tokens(body: dict[str, Any]) -> int:
    return int(body["usage"]["input_tokens"] + body["usage"]["output_tokens"])


def seconds_to_midnight_utc() -> int:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds())


def spend_until_refused(client: ChatApi) -> tuple[list[dict[str, Any]], Reply, int]:
    """New questions, each in a new session, until one is refused: (the answers before it, the
    refusal, the index of the refused question in NEW_QUESTIONS)."""
    answered: list[dict[str, Any]] = []
    for number, question in enumerate(NEW_QUESTIONS):
        reply = client.chat(question, session_id=f"spend-{number}")
        if reply.status != 200:
            return answered, reply, number
        body = assert_chat_reply(reply)
        assert body["cached"] is False
        answered.append(body)
    raise AssertionError(f"{len(NEW_QUESTIONS)} questions and still not refused")


def test_a_user_over_the_daily_budget_gets_429_with_retry_after_and_their_usage(
    users: UsersService,
) -> None:
    # Given dave, who asks new questions one after another
    dave = users.as_user("dave")
    midnight_before = seconds_to_midnight_utc()

    # When he goes on until one is refused
    answered, refused, number = spend_until_refused(dave)
    midnight_after = seconds_to_midnight_utc()

    # Then the refusal is a 429 budget_exceeded, in the error shape, after a few answers
    error = assert_error_reply(refused, 429, "budget_exceeded")
    assert len(answered) >= 2
    # And Retry-After is the seconds until the budget is renewed, at midnight UTC
    retry_after = int(refused.headers["retry-after"])
    assert midnight_after - 1 <= retry_after <= midnight_before + 1
    # And the chain stopped it before any model call, and it left no turn
    stopped = execution_output(users.runtime, error["request_id"])
    assert (stopped["status"], stopped["error"]) == ("failed", "SpendLimitExceededError")
    assert "usage" not in stopped
    assert turns_of(users.runtime, "dave", f"spend-{number}") == []
    # And GET /me/usage reports what his answers spent: at the limit, over it by less than one
    # request's reservation
    usage = dave.usage()
    spent = sum(tokens(body) for body in answered)
    assert usage["user_id"] == "dave"
    assert usage["day"] == datetime.now(UTC).strftime("%Y-%m-%d")
    assert usage["tokens"] == spent
    assert users.token_limit <= spent < users.token_limit + users.token_reserve
    assert usage["limits"] == {"tokens": users.token_limit, "cost_usd": None}
    # And every reservation is settled: what is committed is what was spent
    (day,) = items_of(users.runtime, "dave")["BudgetTable"]
    assert int(day["committed_tokens"]["N"]) == int(day["tokens"]["N"]) == spent


def test_a_user_over_the_budget_is_still_served_from_the_cache_at_no_cost(
    users: UsersService,
) -> None:
    # Given an answer carol's question cached, and dave, whose budget is spent
    users.as_user("carol").ask(CACHED, session_id="carols")
    dave = users.as_user("dave")
    spend_until_refused(dave)
    spent = dave.usage()["tokens"]

    # When dave asks the cached question, as the first turn of a new session
    hit = dave.ask(CACHED, session_id="cached")
    # And then another new question
    refused = dave.chat(NEW_QUESTIONS[-1], session_id="still-over")

    # Then the cached answer is served, with no model call and nothing counted
    assert hit["cached"] is True
    assert hit["usage"]["llm_calls"] == 0
    assert dave.usage()["tokens"] == spent
    # And a question that needs the models is still refused
    assert_error_reply(refused, 429, "budget_exceeded")


def test_one_users_spent_budget_does_not_refuse_another_user(users: UsersService) -> None:
    # Given dave, whose budget is spent
    spend_until_refused(users.as_user("dave"))

    # When erin asks a question nobody asked before
    body = users.as_user("erin").ask(
        "Who started the company, and in which year?", session_id="erins"
    )

    # Then she is answered, and only her own request is counted in her usage
    assert body["cached"] is False
    assert users.as_user("erin").usage()["tokens"] == tokens(body)


def test_usage_of_a_user_who_spent_nothing_is_zero_with_the_limits(users: UsersService) -> None:
    # When a user who has asked nothing today reads their usage
    usage = users.as_user("newcomer").usage()

    # Then nothing is spent, and the limits are the configured ones
    assert (usage["user_id"], usage["tokens"], usage["cost_usd"]) == ("newcomer", 0, 0)
    assert usage["limits"] == {"tokens": users.token_limit, "cost_usd": None}
