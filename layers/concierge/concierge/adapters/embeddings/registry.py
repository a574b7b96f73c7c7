"""Embedding specs from configuration to adapters.

offline                                   lexical, deterministic, no network (`offline.py`)
bedrock:<embedding model id>              Amazon Bedrock InvokeModel: amazon.titan-embed-text-v2:0
                                          or a Cohere Embed v3 model (cohere.embed-multilingual-v3)
"""

from __future__ import annotations

from concierge.adapters import ClientFactory
from concierge.adapters.embeddings.port import Embedder
from concierge.errors import ConfigurationError

_SPEC_HELP = (
    "use offline or bedrock:<embedding model id> "
    "(bedrock:amazon.titan-embed-text-v2:0, bedrock:cohere.embed-multilingual-v3)"
)


def embedder_for(spec: str, clients: ClientFactory) -> Embedder:
    """The embedder a spec names; `clients` builds the AWS client of a `bedrock:` spec, the only
    kind that needs one."""
    provider, _, rest = spec.partition(":")
    if provider == "offline" and not rest:
        from concierge.adapters.embeddings.offline import OfflineEmbedder

        return OfflineEmbedder()
    if provider == "bedrock" and rest:
        from concierge.adapters.embeddings.bedrock import READ_TIMEOUT_S, BedrockEmbedder

        return BedrockEmbedder(rest, clients("bedrock-runtime", READ_TIMEOUT_S))
    raise ConfigurationError(f"unknown embedding model {spec!r}: {_SPEC_HELP}")
