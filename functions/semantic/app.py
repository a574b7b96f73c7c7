"""Semantic step: the optional semantic tier of the answer cache (lookup after an exact miss,
remember after a store). The state machine runs it only when the tier is on."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge.config import SemanticCacheSettings, get_settings
from concierge.errors import ConfigurationError
from concierge.handlers import embedder_for, parse_event
from concierge.models.state import SemanticLookupInput, SemanticRememberInput
from concierge.observability import logger, record_latency, tracer
from concierge.steps import semantic


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings(SemanticCacheSettings)
    if settings.cache_table is None:
        raise ConfigurationError("CONCIERGE_CACHE_TABLE is not set")
    # Imported here, as the other steps do: boto3 is paid for on the first request, not at import.
    from concierge.adapters.aws import aws_client

    dynamodb = aws_client("dynamodb")
    if event.get("action") == "remember":
        semantic.remember(parse_event(SemanticRememberInput, event), dynamodb, settings.cache_table)
        return {"remembered": True}
    started = time.perf_counter()
    found = semantic.lookup(
        parse_event(SemanticLookupInput, event),
        embedder_for(settings.embedding_model),
        dynamodb,
        settings.cache_table,
        settings.semantic_threshold,
    )
    record_latency("semantic", (time.perf_counter() - started) * 1000)
    logger.info(
        "semantic lookup",
        extra={"hit": found.match_key is not None, "similarity": found.similarity},
    )
    return found.model_dump(mode="json")
