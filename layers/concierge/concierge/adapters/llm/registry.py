"""Model specs from configuration to adapters, and routes (primary + fallbacks) to steps.

offline                                   the deterministic offline model
bedrock:<model or inference profile id>   Amazon Bedrock Converse
sagemaker:<endpoint>:<messages|inputs>    a SageMaker (JumpStart) endpoint and its payload family
openai:<model>                            an OpenAI-compatible server at CONCIERGE_OPENAI_BASE_URL
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache

from concierge.adapters.llm.port import ChatModel
from concierge.config import ModelRuntimeSettings, get_settings
from concierge.errors import ConfigurationError
from concierge.pricing import PriceTable
from concierge.steps.calls import ModelRoute, RetryPolicy

_SPEC_HELP = (
    "use offline, bedrock:<model id>, sagemaker:<endpoint>:<messages|inputs> or openai:<model>"
)


def model_for(spec: str, settings: ModelRuntimeSettings | None = None) -> ChatModel:
    runtime = settings or get_settings(ModelRuntimeSettings)
    provider, _, rest = spec.partition(":")
    if provider == "offline" and not rest:
        from concierge.adapters.llm.offline import OfflineModel

        return OfflineModel()
    if provider == "bedrock" and rest:
        from concierge.adapters.llm.bedrock import BedrockConverseModel

        return BedrockConverseModel(
            rest,
            guardrail_id=runtime.bedrock_guardrail_id,
            guardrail_version=runtime.bedrock_guardrail_version,
            latency=runtime.bedrock_latency,
        )
    if provider == "sagemaker":
        endpoint, _, payload = rest.partition(":")
        if endpoint and payload in ("messages", "inputs"):
            from concierge.adapters.llm.sagemaker import SageMakerEndpointModel

            return SageMakerEndpointModel(endpoint, payload)  # type: ignore[arg-type]
    if provider == "openai" and rest:
        from concierge.adapters.llm.openai_compat import OpenAICompatibleModel

        return OpenAICompatibleModel(rest, runtime.openai_base_url, runtime.openai_api_key)
    raise ConfigurationError(f"unknown model {spec!r}: {_SPEC_HELP}")


@cache
def route_for(step: str, primary: str, fallbacks: Sequence[str] = ()) -> ModelRoute:
    """The route of one step, built once per container from its settings."""
    runtime = get_settings(ModelRuntimeSettings)
    return ModelRoute(
        step=step,
        models=[model_for(spec, runtime) for spec in (primary, *fallbacks)],
        prices=PriceTable(runtime.model_prices),
        policy=RetryPolicy(
            attempts_per_model=runtime.model_attempts,
            base_delay_s=runtime.retry_base_delay_ms / 1000,
            max_delay_s=runtime.retry_max_delay_ms / 1000,
        ),
        rng=random.Random(),  # noqa: S311 - jitter, not security
    )
