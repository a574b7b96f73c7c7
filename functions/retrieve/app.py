"""Retrieve step: knowledge search (local index or Bedrock knowledge base) filtered by the
classification."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.config import RetrieveSettings, ScreenSettings
from concierge.models.state import RetrieveInput, parse
from concierge.observability import (
    logger,
    record_classification_doubted,
    record_latency,
    tracer,
)
from concierge.steps.retrieve import retrieve


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = wiring.settings(RetrieveSettings)
    started = time.perf_counter()
    result = retrieve(
        parse(RetrieveInput, event),
        wiring.retriever(),
        settings.top_k,
        min_score=settings.min_score,
        screened=wiring.settings(ScreenSettings).on,
    )
    record_latency("retrieve", (time.perf_counter() - started) * 1000)
    record_classification_doubted(result.widened > 0)
    logger.info(
        "retrieved",
        extra={
            "passages": len(result.passages),
            "filter": result.filter_used,
            "widened": result.widened,
            "retriever": settings.retriever,
            "filtered_out": result.guardrail.reasons if result.guardrail else [],
        },
    )
    return result.model_dump(mode="json")
