"""Model specs from configuration to adapters: `offline` or `bedrock:<model id>`."""

from __future__ import annotations

from functools import cache

from concierge.adapters.llm.port import ChatModel
from concierge.errors import ConfigurationError


@cache
def model_for(spec: str) -> ChatModel:
    provider, _, model_id = spec.partition(":")
    if provider == "offline":
        from concierge.adapters.llm.offline import OfflineModel

        return OfflineModel()
    if provider == "bedrock" and model_id:
        from concierge.adapters.llm.bedrock import BedrockConverseModel

        return BedrockConverseModel(model_id)
    raise ConfigurationError(
        f"unknown model {spec!r}: use 'offline' or 'bedrock:<model or inference profile id>'"
    )
