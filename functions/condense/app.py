"""Condense step: a standalone question from the session's latest turns (cheap model)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge.adapters.llm.registry import route_for
from concierge.config import CondenseSettings, get_settings
from concierge.handlers import parse_event
from concierge.models.state import CondenseInput
from concierge.observability import logger, record_usage, tracer
from concierge.steps.condense import condense


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings(CondenseSettings)
    result = condense(
        parse_event(CondenseInput, event),
        settings,
        route_for("condense", settings.condense_model, settings.condense_fallbacks),
    )
    record_usage(result.usage)
    return result.model_dump(mode="json")
