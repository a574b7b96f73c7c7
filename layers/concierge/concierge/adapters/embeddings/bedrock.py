"""Amazon Bedrock embedding models through InvokeModel. Two request-body families, chosen by
the model id:

titan   amazon.titan-embed-text-v2:0   one text a call: {"inputText", "dimensions", "normalize"}
                                       -> {"embedding": [...], "inputTextTokenCount": n}
cohere  cohere.embed-multilingual-v3   up to 96 texts a call: {"texts", "input_type",
        (or another Cohere Embed v3)   "truncate"} -> {"embeddings": [[...], ...]} (or, when
                                       typed, {"embeddings": {"float": [[...], ...]}})

Vectors are normalised here too, whatever the model returns: the port promises unit vectors.
Errors become the model errors of `concierge.errors`: throttling and 5xx are retryable
(`ModelThrottledError`), a timeout is `ModelTimeoutError`, anything a retry will not fix
(validation, access denied, unknown model) is `ModelInvocationError`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from concierge.adapters.aws_errors import MODEL, translated
from concierge.adapters.embeddings.port import normalised
from concierge.errors import ConfigurationError, ModelInvocationError

Family = Literal["titan", "cohere"]

TITAN_DIMENSIONS = (256, 512, 1024)
READ_TIMEOUT_S = 3.0
COHERE_BATCH = 96  # texts per InvokeModel call
COHERE_MAX_CHARS = 2048  # per text


def family_of(model_id: str) -> Family:
    """The body family of a model id (a plain id or a foundation-model ARN)."""
    if "amazon.titan-embed-text-v2" in model_id:
        return "titan"
    if "cohere.embed-" in model_id:
        return "cohere"
    raise ConfigurationError(
        f"unsupported Bedrock embedding model {model_id!r}: "
        "use amazon.titan-embed-text-v2:0 or a Cohere Embed v3 model (cohere.embed-multilingual-v3)"
    )


class BedrockEmbedder:
    def __init__(
        self,
        model_id: str,
        client: Any,
        *,
        dimensions: int = 1024,
        input_type: str = "search_query",
    ) -> None:
        """`client`: a bedrock-runtime client with one attempt per call and a short read timeout
        (`READ_TIMEOUT_S`): an optional cache tier must not eat the request budget, and a
        failure is a cache miss for the caller to count."""
        self.family = family_of(model_id)
        if self.family == "titan" and dimensions not in TITAN_DIMENSIONS:
            raise ConfigurationError(
                f"Titan Text Embeddings V2 returns {TITAN_DIMENSIONS} dimensions, not {dimensions}"
            )
        self.model_id = model_id
        self.spec = f"bedrock:{model_id}"
        self.dimensions = dimensions
        # Cohere: both sides of the comparison are questions, so one type for all of them.
        self.input_type = input_type
        self._client = client

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self.family == "titan":
            return [normalised(self._titan(text)) for text in texts]
        vectors: list[list[float]] = []
        for start in range(0, len(texts), COHERE_BATCH):
            vectors.extend(self._cohere(texts[start : start + COHERE_BATCH]))
        return [normalised(vector) for vector in vectors]

    def _titan(self, text: str) -> list[float]:
        reply = self._invoke({"inputText": text, "dimensions": self.dimensions, "normalize": True})
        return _floats(reply.get("embedding"), self.spec)

    def _cohere(self, texts: list[str]) -> list[list[float]]:
        reply = self._invoke(
            {
                "texts": [text[:COHERE_MAX_CHARS] for text in texts],
                "input_type": self.input_type,
                "truncate": "END",
            }
        )
        embeddings = reply.get("embeddings")
        if isinstance(embeddings, dict):  # the by-type response shape
            embeddings = embeddings.get("float")
        if not isinstance(embeddings, list) or len(embeddings) != len(texts):
            raise ModelInvocationError(f"{self.spec} returned no embedding for some texts")
        return [_floats(vector, self.spec) for vector in embeddings]

    def _invoke(self, body: dict[str, Any]) -> dict[str, Any]:
        with translated(MODEL, self.spec):
            response = self._client.invoke_model(
                modelId=self.model_id,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            raw = response["body"].read()
        try:
            reply = json.loads(raw)
        except ValueError as exc:
            raise ModelInvocationError(f"{self.spec} returned a body that is not JSON") from exc
        if not isinstance(reply, dict):
            raise ModelInvocationError(f"{self.spec} returned an unexpected body")
        return reply


def _floats(vector: object, spec: str) -> list[float]:
    if not isinstance(vector, list) or not vector:
        raise ModelInvocationError(f"{spec} returned no embedding")
    try:
        return [float(value) for value in vector]
    except (TypeError, ValueError) as exc:
        raise ModelInvocationError(f"{spec} returned an embedding that is not numbers") from exc
