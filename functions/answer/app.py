"""Answer step: the strong model answers from the passages, with citations."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge.adapters.llm.registry import route_for
from concierge.config import AnswerSettings, get_settings
from concierge.handlers import parse_event
from concierge.models.state import AnswerInput
from concierge.observability import logger, record_usage, tracer
from concierge.steps.answer import answer


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings(AnswerSettings)
    result = answer(
        parse_event(AnswerInput, event),
        route_for("answer", settings.answer_model, settings.answer_fallbacks),
    )
    record_usage(result.usage)
    return result.model_dump(mode="json")
