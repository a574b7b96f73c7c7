"""Classify step: category and language of the question (locally when the knowledge base
makes it clear, else with the cheap model)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.config import CategorySettings
from concierge.models.state import ClassifyInput, parse
from concierge.observability import logger, record_local_classification, record_usage, tracer
from concierge.steps.cascade import LOCAL_MODEL
from concierge.steps.classify import classify


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(ClassifyInput, event)
    local = wiring.local_classifier()
    result = classify(
        request,
        wiring.settings(CategorySettings),
        wiring.route("classify", request.variant.models.get("classify")),
        catalog=wiring.catalog("classify"),
        local=local,
    )
    record_usage(result.usage)
    if local is not None:
        record_local_classification(decided=result.usage.model == LOCAL_MODEL)
    return result.model_dump(mode="json")
