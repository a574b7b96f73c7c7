"""The one Logger, Tracer and Metrics of the process, and the metrics every step records.

Logs, traces and metrics carry ids, sizes, categories, error names and timings — never
question, answer, history or passage text:
- handlers trace with `capture_response=False, capture_error=False` (Powertools would put the
  handler's return value — the answer — and the raised error into the trace's metadata) and
  log with `log_event=False`;
- the X-Ray SDK records every exception that crosses a subsegment with `str(error)`, whatever
  Powertools is told, and a provider's error may echo the prompt: the recorder's emitter is
  wrapped so trace documents leave with the exception's type and stack only
  (`TextFreeEmitter`);
- Powertools' Tracer logs a handler's exception with its traceback (messages included) to the
  standard `logging` tree, which the Lambda runtime prints: those records keep their line and
  lose the traceback;
- annotations are the step and model names, metric dimensions the step name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, SchemaValidationError

from concierge.models.http import Guardrail
from concierge.models.state import StepUsage

# Only botocore is patched: it is the one library whose calls (AWS services, Bedrock) a trace
# needs. Patching everything Powertools supports would import `requests` and others at every
# cold start for nothing. The X-Ray SDK records only whitelisted request parameters of those
# calls (table and function names, never items or payloads).
TRACED_MODULES = ("botocore",)

logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()


class TextFreeEmitter:
    """The X-Ray recorder's emitter, wrapped: every trace document (a segment, or a subsegment
    streamed on its own) is sent by `inner` once the messages of the exceptions it records are
    removed; their type, stack (file, line, function) and fault flag stay."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send_entity(self, entity: Any) -> None:
        _drop_exception_messages(entity)
        self.inner.send_entity(entity)

    def __getattr__(self, name: str) -> Any:
        # The rest of the emitter's interface (set_daemon_address, ip, port) is the inner one's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _drop_exception_messages(entity: Any) -> None:
    cause = getattr(entity, "cause", None)
    if isinstance(cause, dict):
        for throwable in cause.get("exceptions", ()):
            vars(throwable).pop("message", None)
    for child in getattr(entity, "subsegments", ()):
        _drop_exception_messages(child)


def _keep_text_out_of_traces(recorder: Any) -> None:
    emitter = getattr(recorder, "emitter", None)
    if emitter is not None and not isinstance(emitter, TextFreeEmitter):
        recorder.emitter = TextFreeEmitter(emitter)


class _WithoutTraceback(logging.Filter):
    """Keeps a record's line, drops its traceback (exception messages may quote user text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


# Wrapped even when tracing is off (locally, in tests): costs nothing, and a process that turns
# tracing on later sends through it all the same.
_keep_text_out_of_traces(tracer.provider)
# "Exception received from lambda_handler", with the traceback: the line is worth keeping.
logging.getLogger("aws_lambda_powertools.tracing.tracer").addFilter(_WithoutTraceback())


def _emit(document: EphemeralMetrics) -> None:
    """Print one EMF document. Telemetry never fails a request: without a namespace (a process
    that is not a configured function, such as a unit test) the document is dropped."""
    try:
        document.flush_metrics()
    except SchemaValidationError:
        logger.debug("metrics not emitted: no namespace")


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
        # Every model of the route failed and the step answered with its defaults.
        step_metrics.add_metric(name="ModelFailed", unit=MetricUnit.Count, value=int(usage.failed))
    if usage.llm_calls and not usage.priced:
        step_metrics.add_metric(name="UnpricedCalls", unit=MetricUnit.Count, value=usage.llm_calls)
    _emit(step_metrics)
    tracer.put_annotation(key="step", value=usage.step)
    tracer.put_annotation(key="model", value=usage.model)
    logger.info("step finished", extra={"usage": usage.model_dump()})


def _record_step_metric(step: str, name: str, unit: MetricUnit, value: float) -> None:
    step_metrics = _step_metrics(step)
    step_metrics.add_metric(name=name, unit=unit, value=value)
    _emit(step_metrics)


def record_local_classification(decided: bool) -> None:
    """A first turn the cascade's local classifier decided (1: the classify model was not
    called) or handed to the model (0): the share of skipped model calls is its average."""
    _record_step_metric("classify", "ClassifiedLocally", MetricUnit.Count, int(decided))


def record_classification_doubted(doubted: bool) -> None:
    """A retrieval whose search without the filter ranked first a passage the classification's
    filter hid (1), or agreed with it (0): the average is the share of questions the classify
    model (or the local vote) likely routed wrong, a sign of overlapping categories."""
    _record_step_metric("retrieve", "ClassificationDoubted", MetricUnit.Count, int(doubted))


def record_latency(step: str, latency_ms: float) -> None:
    _record_step_metric(step, "StepLatency", MetricUnit.Milliseconds, latency_ms)


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


def record_variant(variant: str, *, cached: bool, cost_usd: float) -> None:
    """An answered request, by the A/B variant that served it: its rate of cache hits and its
    cost, side by side with the other variants'."""
    served = EphemeralMetrics()
    served.add_dimension(name="variant", value=variant)
    served.add_metric(name="VariantAnswered", unit=MetricUnit.Count, value=1)
    served.add_metric(name="VariantCacheHit", unit=MetricUnit.Count, value=int(cached))
    served.add_metric(name="VariantCostUsd", unit=MetricUnit.NoUnit, value=cost_usd)
    _emit(served)


def record_feedback(variant: str, rating: str) -> None:
    """A user rated an answer, by the A/B variant that served it: FeedbackUp and FeedbackDown,
    one of them 1 and the other 0, so that a variant's share of up is FeedbackUp's average."""
    rated = EphemeralMetrics()
    rated.add_dimension(name="variant", value=variant)
    rated.add_metric(name="FeedbackUp", unit=MetricUnit.Count, value=int(rating == "up"))
    rated.add_metric(name="FeedbackDown", unit=MetricUnit.Count, value=int(rating == "down"))
    _emit(rated)


def record_guardrail(guardrail: Guardrail) -> None:
    """A safety layer intervened in a request: counted by what it did and to what (never why in
    a dimension: reasons go to the log line, names only)."""
    guarded = EphemeralMetrics()
    guarded.add_dimension(name="action", value=guardrail.action)
    guarded.add_dimension(name="source", value=guardrail.source)
    guarded.add_metric(name="GuardrailIntervened", unit=MetricUnit.Count, value=1)
    _emit(guarded)
