"""One model call with everything around it: the route (primary, then fallbacks), retries with
full jitter inside the remaining budget, and the bookkeeping of latency, tokens and cost.

Retryable failures (throttling, unavailable, timeouts, 5xx) are retried on the same model, then
handed to the next model of the route; a timeout, or a reply that cannot be read, goes to the
next model at once. Each attempt's
timeout leaves the models after it a reserve of the budget, so a slow primary still falls back. Client errors (validation, access denied, not found)
fail fast: another model would not fix the request and would hide the misconfiguration.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from concierge.adapters.llm.port import ChatModel, ModelReply, ModelRequest, Task
from concierge.deadline import seconds_left
from concierge.errors import (
    BudgetExceededError,
    ModelInvocationError,
    ModelReplyError,
    ModelThrottledError,
    ModelTimeoutError,
)
from concierge.models.state import StepUsage
from concierge.observability import logger
from concierge.pricing import PriceTable
from concierge.prompt_library import Prompt

# Below this there is no point starting a model call: it could not finish in time.
MIN_CALL_SECONDS = 0.5
_RETRYABLE = (ModelThrottledError, ModelTimeoutError, ModelReplyError)
# What call_model raises once every model of the route failed (a spent budget is
# BudgetExceededError, not among them): a side step may go on without a model on these.
ROUTE_FAILURES = (ModelThrottledError, ModelTimeoutError, ModelInvocationError)


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_model: int = 2
    base_delay_s: float = 0.2
    max_delay_s: float = 2.0
    # What one attempt leaves for each model still to try after it: a slow primary must not
    # use up the budget its fallbacks need to answer.
    fallback_reserve_s: float = 5.0

    def attempt_timeout(self, remaining: float, models_after: int) -> float:
        """An attempt's timeout: the remaining budget less the fallbacks' reserve, and never
        less than an even share of the remaining budget among the models left."""
        if not models_after:
            return remaining
        even_share = remaining / (models_after + 1)
        return max(even_share, remaining - models_after * self.fallback_reserve_s)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: anywhere between 0 and the capped exponential backoff."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


@dataclass
class ModelRoute:
    """The models of one step, in order of preference, and how to call them."""

    step: str
    models: Sequence[ChatModel]
    prices: PriceTable = field(default_factory=PriceTable)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    @property
    def spec(self) -> str:
        return self.models[0].spec


def call_model(
    route: ModelRoute,
    task: Task,
    prompt: Prompt,
    *,
    system: str,
    user: str,
    inputs: dict[str, Any],
    deadline_ms: int,
    guarded: str = "",
) -> tuple[ModelReply, StepUsage]:
    """`system` and `user` are the rendered prompt; `prompt` gives the inference parameters;
    `guarded` is the part of `user` the user wrote (what a guardrail assesses on input)."""
    retries = 0
    last_error: Exception | None = None
    started = time.perf_counter()
    for position, model in enumerate(route.models):
        if position:
            logger.warning(
                "model fallback",
                extra={
                    "step": route.step,
                    "from_model": route.models[position - 1].spec,
                    "to_model": model.spec,
                },
            )
        for attempt in range(route.policy.attempts_per_model):
            remaining = seconds_left(deadline_ms)
            if remaining < MIN_CALL_SECONDS:
                raise BudgetExceededError(
                    f"{task}: {remaining:.2f}s left of the request budget"
                ) from last_error
            request = ModelRequest(
                task=task,
                system=system,
                prompt=user,
                guarded=guarded,
                inputs=inputs,
                max_tokens=prompt.max_tokens,
                temperature=prompt.temperature,
                top_p=prompt.top_p,
                timeout_s=route.policy.attempt_timeout(remaining, len(route.models) - position - 1),
            )
            try:
                reply = model.generate(request)
            except _RETRYABLE as error:
                last_error = error
                logger.warning(
                    "model call failed",
                    extra={
                        "step": route.step,
                        "model": model.spec,
                        "error": type(error).__name__,
                        "attempt": attempt + 1,
                    },
                )
                if isinstance(error, ModelTimeoutError | ModelReplyError) and position + 1 < len(
                    route.models
                ):
                    # Slow now, or answering in a shape we cannot read: the fallback answers
                    # sooner than a retry of the same model would.
                    break
                if attempt + 1 < route.policy.attempts_per_model:
                    delay = route.policy.delay(attempt, route.rng)
                    if seconds_left(deadline_ms) - delay < MIN_CALL_SECONDS:
                        break  # no time to wait for this model: try the next one now
                    retries += 1
                    route.sleep(delay)
                continue
            return reply, _usage(
                route, task, reply, started=started, retries=retries, fallbacks=position
            )
    assert last_error is not None  # every model failed retryably
    if isinstance(last_error, ModelReplyError):
        # The chain and the API know the error by this name (a step fails with its class).
        raise ModelInvocationError(str(last_error)) from last_error
    raise last_error


def _usage(
    route: ModelRoute,
    task: Task,
    reply: ModelReply,
    *,
    started: float,
    retries: int,
    fallbacks: int,
) -> StepUsage:
    cost = route.prices.cost(reply.model, reply.input_tokens, reply.output_tokens)
    if cost is None:
        logger.warning("model has no price", extra={"model": reply.model})
    return StepUsage(
        step=task,
        model=reply.model,
        llm_calls=1,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_usd=cost or 0.0,
        latency_ms=round((time.perf_counter() - started) * 1000),
        estimated=reply.estimated,
        priced=cost is not None,
        retries=retries,
        fallbacks=fallbacks,
    )
