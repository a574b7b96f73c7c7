"""POST /chat's work: one question through the chain, for one user, within their budget.

A question that carries injected instructions (concierge.safety.screen) is refused here,
before the chain starts: no model reads it, nothing is stored, and the response says why in
`guardrail`. So is a question a safety layer stops inside the chain (a guardrail on classify
or condense, the screen on a conversation)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from concierge.adapters.dynamodb.budgets import Spend
from concierge.adapters.executor import ExecutionResult
from concierge.api.errors import CHAIN_FAILURES, INTERNAL, budget_exceeded, invalid_request
from concierge.api.services import ApiServices, Serving, seconds_to_midnight
from concierge.cache_keys import cache_key
from concierge.errors import StoreUnavailableError
from concierge.models.http import ChatRequest, ChatResponse, Guardrail, Usage
from concierge.models.identity import LOCAL_USER, User
from concierge.models.state import (
    BudgetReservation,
    CacheLookup,
    ChainFailure,
    ChainInput,
    ChainOutput,
    StepUsage,
)
from concierge.observability import (
    logger,
    record_budget_exceeded,
    record_cache_outcome,
    record_degraded,
    record_guardrail,
    record_variant,
)
from concierge.pricing import micro_usd
from concierge.prompt_library import in_language, load_prompt
from concierge.safety.pii import redact
from concierge.safety.screen import screen
from concierge.text import detect_language

# The category of a question that was refused before it was classified.
UNCLASSIFIED = "none"


def budget_deadline_ms(received_ms: int | None, now: float, budget_ms: int) -> int:
    """The request's deadline: its budget counted from when API Gateway received it. A receipt
    time in the future or older than the budget is not a live request's (a replayed test
    event, a skewed clock): the budget then counts from now."""
    now_ms = int(now * 1000)
    if received_ms is None or not now_ms - budget_ms < received_ms <= now_ms + 1_000:
        return now_ms + budget_ms
    return min(received_ms, now_ms) + budget_ms


def run_chat(
    request: ChatRequest,
    request_id: str,
    user: User,
    services: ApiServices,
    *,
    bypass_cache: bool = False,
    received_ms: int | None = None,
) -> ChatResponse:
    """`received_ms`: when API Gateway received the request (its requestContext.timeEpoch), so
    the budget includes a cold start and everything before the handler ran."""
    settings = services.settings
    now = time.time()
    deadline_ms = budget_deadline_ms(received_ms, now, settings.request_budget_ms)
    session_id = request.session_id or uuid.uuid4().hex
    serving = _serving(request, user, session_id, services)
    scope = serving.cache_scope
    # Detected from the words alone, so the first-turn lookup needs no model call.
    language = detect_language(request.question)
    if services.screen and (verdict := screen(request.question)).flagged:
        blocked = Guardrail(action="blocked", source="input", reasons=list(verdict.reasons))
        return _refusal(blocked, language, session_id, request_id, serving)
    budget = services.budget.reservation(datetime.fromtimestamp(now, UTC))
    chain_input = ChainInput(
        request_id=request_id,
        user_id=user.user_id,
        session_id=session_id,
        question=request.question,
        stored_question=(
            redact(request.question).text if services.redact_pii else request.question
        ),
        lookup=CacheLookup(
            cache_key=cache_key(request.question, language, scope),
            question=request.question,
            language=language,
        ),
        semantic=settings.semantic_cache,
        cache_language=language,
        cache_scope=scope,
        variant=serving.variant,
        prompt_versions=serving.prompt_versions,
        answer_model=serving.answer_model,
        kb_version=settings.kb_version,
        cache_bypass=bypass_cache,
        history_turns=settings.history_turns,
        turn_key=f"{session_id}#{int(now * 1000):013d}#{request_id}",
        now_epoch_seconds=f"{int(now):010d}",
        deadline_ms=deadline_ms,
        cache_expires_at=int(now) + settings.cache_ttl_seconds,
        history_expires_at=int(now) + settings.history_ttl_seconds,
        budget=budget,
    )
    result = services.executor.run(
        request_id, chain_input.model_dump(mode="json"), deadline_ms / 1000 - now + 1
    )
    try:
        output = _successful_output(result, user, budget, services, now)
    except _Stopped as stopped:
        return _refusal(stopped.guardrail, language, session_id, request_id, serving)
    record_cache_outcome(
        hit=output.status == "cached", bypassed=bypass_cache, semantic=output.semantic
    )
    if output.degraded:
        # Answered all the same; the error names (never their causes, which may quote user
        # text) say which store let the request down.
        record_degraded(output.degraded)
        logger.warning(
            "answered with a degraded store",
            extra={"degraded": {part: _error_name(v) for part, v in output.degraded.items()}},
        )
    usage = _total(output.usage)
    if output.reserved:
        _settle(user, budget, services, usage)
    cached = output.status == "cached"
    record_variant(serving.variant.name, cached=cached, cost_usd=usage.cost_usd)
    logger.info(
        "answered",
        extra={
            "variant": serving.variant.name,
            "cached": cached,
            "llm_calls": usage.llm_calls,
            "cost_usd": usage.cost_usd,
            "category": output.category,
            "language": output.language,
        },
    )
    return ChatResponse(
        answer=output.answer,
        citations=output.citations,
        category=output.category,
        language=output.language,
        cached=output.status == "cached",
        session_id=session_id,
        request_id=request_id,
        usage=usage,
        variant=serving.variant.name,
        guardrail=_reported(output.guardrail),
    )


def _serving(request: ChatRequest, user: User, session_id: str, services: ApiServices) -> Serving:
    """The request's A/B variant: the one an administrator names (evaluations compare variants
    through the API this way), else the user's by a stable hash of their `sub` — of the
    session in the open local run, where everyone is the local user."""
    if request.variant is not None and user.admin:
        named = services.experiments.named(request.variant)
        if named is None:
            known = ", ".join(v.name for v in services.experiments.experiment.variants)
            raise invalid_request(f"no variant {request.variant!r} here (known: {known})").error()
        return named
    key = session_id if user.user_id == LOCAL_USER else user.user_id
    return services.experiments.for_user(key)


class _Stopped(Exception):
    """A safety layer stopped the question inside the chain, before an answer was written."""

    def __init__(self, guardrail: Guardrail) -> None:
        super().__init__(guardrail.source)
        self.guardrail = guardrail


def _refusal(
    guardrail: Guardrail, language: str, session_id: str, request_id: str, serving: Serving
) -> ChatResponse:
    """The answer to a question a safety layer stopped: a short refusal in the question's
    language, no citations, nothing spent. Nothing is stored: the question stays out of the
    history (a later follow-up must not be condensed from it) and out of the cache."""
    _reported(guardrail)
    logger.info(
        "question refused",
        extra={"source": guardrail.source, "reasons": guardrail.reasons},
    )
    return ChatResponse(
        answer=in_language(
            load_prompt("answer", serving.variant.prompts.get("answer")).refused, language
        ),
        citations=[],
        category=UNCLASSIFIED,
        language=language,
        cached=False,
        session_id=session_id,
        request_id=request_id,
        usage=Usage(),
        variant=serving.variant.name,
        guardrail=guardrail,
    )


def _reported(guardrail: Guardrail | None) -> Guardrail | None:
    if guardrail is not None:
        record_guardrail(guardrail)
    return guardrail


def _successful_output(
    result: ExecutionResult,
    user: User,
    budget: BudgetReservation | None,
    services: ApiServices,
    now: float,
) -> ChainOutput:
    if result.status == "TIMED_OUT":
        logger.warning("chain timed out")
        raise CHAIN_FAILURES["States.Timeout"].error()
    if result.status != "SUCCEEDED" or result.output is None:
        logger.error(
            "chain execution failed", extra={"status": result.status, "error": result.error}
        )
        raise CHAIN_FAILURES.get(result.error or "", INTERNAL).error()
    if result.output.get("status") == "failed":
        failure = ChainFailure.model_validate(result.output)
        if failure.reserved:
            # What a failed request spent is not known here: its reservation is released.
            _settle(user, budget, services, Usage())
        if failure.error == "GuardrailInterventionError":
            # Its reservation is released above: the refusal costs the user nothing.
            raise _Stopped(_intervention(failure.cause))
        if failure.error == "SpendLimitExceededError":
            logger.info("daily budget spent")
            record_budget_exceeded()
            raise budget_exceeded(seconds_to_midnight(datetime.fromtimestamp(now, UTC))).error()
        # The cause may quote model output or user text: log the error name only.
        logger.error("chain step failed", extra={"error": failure.error})
        raise CHAIN_FAILURES.get(failure.error, INTERNAL).error()
    return ChainOutput.model_validate(result.output)


def _intervention(cause: str | None) -> Guardrail:
    """The intervention a step reported: its error message is the Guardrail as JSON, inside
    the Lambda error document Step Functions passes as the cause."""
    try:
        document = json.loads(cause or "")
        message = document.get("errorMessage", "") if isinstance(document, dict) else ""
        return Guardrail.model_validate_json(message)
    except (ValueError, TypeError):
        return Guardrail(action="blocked", source="input")


def _settle(
    user: User, budget: BudgetReservation | None, services: ApiServices, usage: Usage
) -> None:
    """Replace the reservation by what the request used. A budget table that cannot be written
    now loses this settlement (the reservation stays counted): the answer is still given."""
    if budget is None or services.spending is None:
        return
    reserved = Spend(budget.reserve_tokens, budget.reserve_micro_usd)
    actual = Spend(usage.input_tokens + usage.output_tokens, micro_usd(usage.cost_usd))
    try:
        services.spending.settle(user.user_id, budget.day, reserved, actual, budget.expires_at)
    except StoreUnavailableError:
        logger.warning("budget settlement failed")
        record_degraded(["budget_settle"])


def _total(steps: list[StepUsage]) -> Usage:
    usage = Usage()
    for step in steps:
        usage.llm_calls += step.llm_calls
        usage.input_tokens += step.input_tokens
        usage.output_tokens += step.output_tokens
        usage.cost_usd += step.cost_usd
    usage.cost_usd = round(usage.cost_usd, 8)
    return usage


def _error_name(failure: Any) -> str:
    return str(failure.get("Error", "unknown")) if isinstance(failure, dict) else "unknown"
