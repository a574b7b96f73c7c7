"""Classify step: category and language of the question (cheap model)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge.adapters.llm.registry import route_for
from concierge.config import ClassifySettings, get_settings
from concierge.handlers import parse_event
from concierge.models.state import ClassifyInput
from concierge.observability import logger, record_usage, tracer
from concierge.steps.classify import classify


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings(ClassifySettings)
    result = classify(
        parse_event(ClassifyInput, event),
        settings,
        route_for("classify", settings.classify_model, settings.classify_fallbacks),
    )
    record_usage(result.usage)
    return result.model_dump(mode="json")
