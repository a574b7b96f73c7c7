"""Answer step: the strong model answers from the passages, with citations."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.config import AnswerCheckSettings, PrivacySettings
from concierge.models.state import AnswerInput, parse
from concierge.observability import logger, record_usage, tracer
from concierge.steps.answer import answer


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(AnswerInput, event)
    result = answer(
        request,
        wiring.route("answer", request.variant.models.get("answer")),
        wiring.settings(AnswerCheckSettings),
        redact_pii=wiring.settings(PrivacySettings).redact_pii,
    )
    record_usage(result.usage)
    if result.problems or result.guardrail:
        # Names only: what was repaired, what intervened.
        logger.info(
            "answer checked",
            extra={
                "problems": result.problems,
                "guardrail": result.guardrail.model_dump() if result.guardrail else None,
            },
        )
    return result.model_dump(mode="json")
