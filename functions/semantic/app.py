"""Semantic step: the optional semantic tier of the answer cache (lookup after an exact miss,
remember after a store). The state machine runs it only when the tier is on."""

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from concierge import wiring
from concierge.config import SemanticCacheSettings
from concierge.models.state import SemanticLookupInput, SemanticRememberInput, parse
from concierge.observability import logger, record_latency, tracer
from concierge.steps import semantic


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "remember":
        semantic.remember(parse(SemanticRememberInput, event), wiring.semantic_index())
        return {"remembered": True}
    started = time.perf_counter()
    found = semantic.lookup(
        parse(SemanticLookupInput, event),
        wiring.embedder(),
        wiring.semantic_index(),
        wiring.settings(SemanticCacheSettings).semantic_threshold,
    )
    record_latency("semantic", (time.perf_counter() - started) * 1000)
    logger.info(
        "semantic lookup",
        extra={"hit": found.match_key is not None, "similarity": found.similarity},
    )
    return found.model_dump(mode="json")
