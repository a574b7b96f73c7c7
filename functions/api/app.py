"""API function: the HTTP API — POST /chat, DELETE /sessions/{session_id}, GET /me/usage,
DELETE /users/{user_id}, POST /admin/cache/flush, GET /health."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.observability import logger, metrics, tracer


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.http_api().resolve(event, context)
