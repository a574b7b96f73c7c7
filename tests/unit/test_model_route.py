"""Routing a model call: retries with full jitter, fallbacks, fail-fast, budget and cost."""

from __future__ import annotations

import random
import time

import pytest

from concierge.errors import (
    BudgetExceededError,
    ModelInvocationError,
    ModelReplyError,
    ModelThrottledError,
    ModelTimeoutError,
)
from concierge.models.state import StepUsage
from concierge.pricing import Price, PriceTable
from concierge.prompt_library import load_prompt
from concierge.steps.calls import ModelRoute, RetryPolicy, call_model
from fakes import FlakyModel

PRICES = PriceTable(
    {"cheap": Price(input=0.001, output=0.002), "strong": Price(input=0.01, output=0.03)}
)


def _call(route: ModelRoute, seconds: float = 20.0) -> tuple[str, StepUsage]:
    reply, usage = call_model(
        route,
        "answer",
        load_prompt("answer"),
        system="s",
        user="u",
        inputs={},
        deadline_ms=int((time.time() + seconds) * 1000),
    )
    return reply.model, usage


def _route(*models: FlakyModel, waits: list[float] | None = None, attempts: int = 2) -> ModelRoute:
    return ModelRoute(
        step="answer",
        models=list(models),
        prices=PRICES,
        policy=RetryPolicy(attempts_per_model=attempts, base_delay_s=0.2, max_delay_s=2.0),
        sleep=(waits if waits is not None else []).append,
        rng=random.Random(7),
    )


def test_a_throttled_call_is_retried_on_the_same_model() -> None:
    # Given a model that is throttled once
    waits: list[float] = []
    model = FlakyModel([ModelThrottledError("slow down")], spec="strong")

    # When it is called
    answered_by, usage = _call(_route(model, waits=waits))

    # Then it answers on the second attempt, after one jittered wait
    assert answered_by == "strong"
    assert usage.retries == 1 and usage.fallbacks == 0
    assert len(waits) == 1 and 0 <= waits[0] <= 0.2  # full jitter: anywhere up to the backoff


def test_when_a_model_stays_unavailable_the_next_one_answers() -> None:
    # Given a primary model that fails both its attempts, and a working fallback
    primary = FlakyModel([ModelThrottledError("a"), ModelTimeoutError("b")], spec="strong")
    fallback = FlakyModel([], spec="cheap")

    # When the route is called
    answered_by, usage = _call(_route(primary, fallback))

    # Then the fallback answers, and the usage counts the retry and the fallback
    assert answered_by == "cheap"
    assert usage.fallbacks == 1 and usage.retries == 1
    assert usage.model == "cheap"


def test_a_reply_that_cannot_be_read_goes_to_the_fallback_at_once() -> None:
    # Given a primary that answers in a shape its adapter cannot read, and a working fallback
    primary = FlakyModel([ModelReplyError("not JSON")], spec="strong")
    fallback = FlakyModel([], spec="cheap")

    # When the route is called
    answered_by, usage = _call(_route(primary, fallback))

    # Then the fallback answers, without a retry of the primary
    assert answered_by == "cheap"
    assert usage.fallbacks == 1 and usage.retries == 0
    assert len(primary.timeouts) == 1


def test_unreadable_replies_from_every_model_fail_as_a_model_error() -> None:
    # Given a lone model that answers unreadably twice
    route = _route(FlakyModel([ModelReplyError("a"), ModelReplyError("b")], spec="strong"))

    # When / Then the route fails with the error the chain and the API know by name
    with pytest.raises(ModelInvocationError, match="b") as failure:
        _call(route)
    assert type(failure.value) is ModelInvocationError


def test_a_client_error_fails_fast_without_trying_the_fallback() -> None:
    # Given a primary model that is refused access, and a working fallback
    primary = FlakyModel([ModelInvocationError("AccessDeniedException")], spec="strong")
    fallback = FlakyModel([], spec="cheap")

    # When / Then the route fails with the client error
    with pytest.raises(ModelInvocationError):
        _call(_route(primary, fallback))

    # And the fallback is never called
    assert fallback.timeouts == []


def test_when_every_model_fails_the_last_retryable_error_is_raised() -> None:
    # Given two models that fail every attempt, the last with a timeout
    route = _route(
        FlakyModel([ModelThrottledError("1"), ModelThrottledError("2")], spec="strong"),
        FlakyModel([ModelTimeoutError("3"), ModelTimeoutError("4")], spec="cheap"),
    )

    # When / Then the route fails with the last error
    with pytest.raises(ModelTimeoutError, match="4"):
        _call(route)


def test_each_attempt_gets_the_remaining_budget_as_its_timeout() -> None:
    # Given a model that is throttled once
    model = FlakyModel([ModelThrottledError("x")], spec="strong")

    # When it is called with ten seconds left
    _call(_route(model), seconds=10)

    # Then each attempt's timeout is within the budget, and the retry's no longer than the first
    assert all(0 < timeout <= 10 for timeout in model.timeouts)
    assert model.timeouts[1] <= model.timeouts[0]


def test_an_attempt_leaves_its_fallbacks_a_reserve_of_the_budget() -> None:
    # Given a route of three models, the first two timing out
    first = FlakyModel([ModelTimeoutError("slow")], spec="strong")
    second = FlakyModel([ModelTimeoutError("slow too")], spec="cheap")
    third = FlakyModel([], spec="cheap")

    # When it is called with twenty seconds left
    answered_by, usage = _call(_route(first, second, third), seconds=20)

    # Then the primary could wait 20 s less 2 x 5 s of reserve, the second model what was left
    # less one reserve, the last one all that was left (the fakes fail at once); and a timeout
    # went to the next model without a retry
    assert answered_by == "cheap" and usage.fallbacks == 2 and usage.retries == 0
    assert [len(first.timeouts), len(second.timeouts), len(third.timeouts)] == [1, 1, 1]
    assert 9.5 < first.timeouts[0] <= 10.0
    assert 14.5 < second.timeouts[0] <= 15.0
    assert 19.5 < third.timeouts[0] <= 20.0


def test_a_short_budget_is_shared_evenly_among_the_models_left() -> None:
    # Given the policy's reserve of 5 s per fallback
    policy = RetryPolicy()

    # When six seconds are left for a primary and two fallbacks, or for the last model
    shared = policy.attempt_timeout(6.0, models_after=2)
    last = policy.attempt_timeout(6.0, models_after=0)

    # Then the primary gets an even third rather than nothing, and the last model all of it
    assert shared == pytest.approx(2.0)
    assert last == 6.0


def test_no_call_starts_without_budget_left() -> None:
    # Given a working model
    model = FlakyModel([], spec="strong")

    # When / Then calling it with too little time left exceeds the budget
    with pytest.raises(BudgetExceededError):
        _call(_route(model), seconds=0.2)

    # And the model was never called
    assert model.timeouts == []


def test_a_retry_that_would_outlast_the_budget_goes_to_the_fallback_at_once() -> None:
    # Given a throttled primary model whose backoff is far longer than the time left, and a
    # working fallback
    waits: list[float] = []
    primary = FlakyModel([ModelThrottledError("x")], spec="strong")
    fallback = FlakyModel([], spec="cheap")
    route = _route(primary, fallback, waits=waits)
    route.policy = RetryPolicy(attempts_per_model=2, base_delay_s=30, max_delay_s=30)
    route.rng = random.Random(0)  # a draw far above the 1 s left

    # When the route is called with 1.5 seconds left
    answered_by, _ = _call(route, seconds=1.5)

    # Then the fallback answers, without any wait
    assert answered_by == "cheap"
    assert waits == []


def test_cost_comes_from_the_price_table() -> None:
    # Given a model with a price in the table
    model = FlakyModel([], spec="strong")

    # When it answers
    _, usage = _call(_route(model))

    # Then the cost is its tokens at the table's prices
    assert usage.cost_usd == pytest.approx(1000 * 0.01 / 1000 + 500 * 0.03 / 1000)
    assert usage.priced is True


def test_a_model_without_a_price_is_counted_as_unpriced() -> None:
    # Given a model that is not in the price table
    model = FlakyModel([], spec="mystery")

    # When it answers
    _, usage = _call(_route(model))

    # Then it costs nothing and is marked as unpriced
    assert (usage.cost_usd, usage.priced) == (0.0, False)


def test_inference_profiles_are_priced_as_their_base_model() -> None:
    # Given the default price table
    table = PriceTable()

    # When a model and a regional inference profile of it are priced
    base = table.cost("bedrock:anthropic.claude-3-haiku-20240307-v1:0", 1000, 1000)
    profile = table.cost("bedrock:eu.anthropic.claude-3-haiku-20240307-v1:0", 1000, 1000)

    # Then both cost the same, the base model's price
    assert profile == base
    assert base == pytest.approx(0.0015)
