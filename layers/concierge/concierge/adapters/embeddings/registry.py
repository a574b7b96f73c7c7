"""Embedding specs from configuration to adapters.

offline                                   lexical, deterministic, no network (`offline.py`)
bedrock:<embedding model id>              Amazon Bedrock InvokeModel: amazon.titan-embed-text-v2:0
                                          or a Cohere Embed v3 model (cohere.embed-multilingual-v3)
"""

from __future__ import annotations

from concierge.adapters.embeddings.port import Embedder
from concierge.errors import ConfigurationError

_SPEC_HELP = (
    "use offline or bedrock:<embedding model id> "
    "(bedrock:amazon.titan-embed-text-v2:0, bedrock:cohere.embed-multilingual-v3)"
)


def embedder_for(spec: str) -> Embedder:
    """The embedder a spec names. Only a `bedrock:` spec imports boto3."""
    provider, _, rest = spec.partition(":")
    if provider == "offline" and not rest:
        from concierge.adapters.embeddings.offline import OfflineEmbedder

        return OfflineEmbedder()
    if provider == "bedrock" and rest:
        from concierge.adapters.embeddings.bedrock import BedrockEmbedder

        return BedrockEmbedder(rest)
    raise ConfigurationError(f"unknown embedding model {spec!r}: {_SPEC_HELP}")
