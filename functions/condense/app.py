"""Condense step: a standalone question from the session's latest turns (cheap model)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.adapters.dynamodb.history import turns_from_items
from concierge.config import CategorySettings, CondenseSettings, ScreenSettings
from concierge.models.state import CondenseInput, parse
from concierge.observability import logger, record_usage, tracer
from concierge.steps.condense import condense


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(CondenseInput, event)
    result = condense(
        request,
        turns_from_items(request.history_items),
        wiring.settings(CategorySettings),
        wiring.route("condense", request.variant.models.get("condense")),
        wiring.settings(CondenseSettings).history_tokens,
        screened=wiring.settings(ScreenSettings).on,
        catalog=wiring.catalog(),
    )
    record_usage(result.usage)
    return result.model_dump(mode="json")
