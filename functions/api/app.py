"""API step: validate POST /chat, run the chain synchronously, map the result to HTTP."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge.api import handle
from concierge.config import ApiSettings, get_settings
from concierge.handlers import chain_executor
from concierge.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings(ApiSettings)
    return handle(event, settings, chain_executor(settings))
