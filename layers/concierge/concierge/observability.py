"""The one Logger, Tracer and Metrics of the process, and the metrics every step records.

Logs carry ids, sizes, categories and timings — never question or answer text.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from concierge.models.state import StepUsage

logger = Logger()
# Only botocore is patched: it is the one library whose calls (AWS services, Bedrock) a trace
# needs. Patching everything Powertools supports would import `requests` and others at every
# cold start for nothing.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


def _step_metrics(step: str) -> EphemeralMetrics:
    # Its own EMF document per step with a `step` dimension: no state is shared between steps
    # that run in one process (the local runtime runs Parallel branches on threads).
    step_metrics = EphemeralMetrics()
    step_metrics.add_dimension(name="step", value=step)
    return step_metrics


def record_usage(usage: StepUsage) -> None:
    """Latency, tokens and cost of one step, as metrics, a trace annotation and a log line."""
    step_metrics = _step_metrics(usage.step)
    step_metrics.add_metric(
        name="StepLatency", unit=MetricUnit.Milliseconds, value=usage.latency_ms
    )
    step_metrics.add_metric(name="LlmCalls", unit=MetricUnit.Count, value=usage.llm_calls)
    if usage.llm_calls:
        step_metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=usage.input_tokens)
        step_metrics.add_metric(
            name="OutputTokens", unit=MetricUnit.Count, value=usage.output_tokens
        )
        step_metrics.add_metric(name="CostUsd", unit=MetricUnit.NoUnit, value=usage.cost_usd)
    # Outcomes worth an alarm: each is counted, zero included, so dashboards show rates.
    step_metrics.add_metric(name="ModelRetries", unit=MetricUnit.Count, value=usage.retries)
    step_metrics.add_metric(name="ModelFallbacks", unit=MetricUnit.Count, value=usage.fallbacks)
    if usage.step in ("classify", "condense"):
        step_metrics.add_metric(name="OutputRepairs", unit=MetricUnit.Count, value=usage.repairs)
        step_metrics.add_metric(
            name="OutputDefaulted", unit=MetricUnit.Count, value=int(usage.defaulted)
        )
    if usage.llm_calls and not usage.priced:
        step_metrics.add_metric(name="UnpricedCalls", unit=MetricUnit.Count, value=usage.llm_calls)
    step_metrics.flush_metrics()
    tracer.put_annotation(key="step", value=usage.step)
    tracer.put_annotation(key="model", value=usage.model)
    logger.info("step finished", extra={"usage": usage.model_dump()})


def record_latency(step: str, latency_ms: float) -> None:
    step_metrics = _step_metrics(step)
    step_metrics.add_metric(name="StepLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    step_metrics.flush_metrics()


def record_cache_outcome(hit: bool, bypassed: bool = False, semantic: bool = False) -> None:
    """Counted by the api function, which sees every request's outcome. A semantic hit is a
    hit, and counted once more as SemanticCacheHit."""
    name = "CacheBypass" if bypassed else "CacheHit" if hit else "CacheMiss"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if semantic:
        metrics.add_metric(name="SemanticCacheHit", unit=MetricUnit.Count, value=1)


# Best-effort parts of the chain (the definition's catch blocks) and the metric each counts in.
DEGRADED_METRICS = {
    "history_read": "HistoryReadFailed",
    "history_write": "HistoryWriteFailed",
    "cache_read": "CacheReadFailed",
    "cache_write": "CacheWriteFailed",
    "hit_count": "CacheHitCountFailed",
    "semantic_read": "SemanticLookupFailed",
    "semantic_write": "SemanticRememberFailed",
    "budget_reserve": "BudgetReserveFailed",
    "budget_settle": "BudgetSettleFailed",
}


def record_degraded(parts: Iterable[str]) -> None:
    """A request answered although a store failed: counted, so an alarm can see it."""
    for part in parts:
        name = DEGRADED_METRICS.get(part, "DegradedOther")
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def record_response(status: int) -> None:
    """Responses by class (Status2xx, Status4xx, Status5xx): client mistakes vs our failures."""
    metrics.add_metric(name=f"Status{status // 100}xx", unit=MetricUnit.Count, value=1)


def record_budget_exceeded() -> None:
    """A request refused because its user's daily budget is spent (no model was called)."""
    metrics.add_metric(name="BudgetExceeded", unit=MetricUnit.Count, value=1)
