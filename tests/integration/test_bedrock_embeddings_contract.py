"""The Bedrock embedding contract (InvokeModel), checked by botocore's Stubber against the
service model: the request body of each model family, reading the reply, and error mapping."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from concierge.adapters.aws import aws_client, reset_clients
from concierge.adapters.embeddings.bedrock import BedrockEmbedder
from concierge.adapters.embeddings.registry import embedder_for
from concierge.errors import ModelInvocationError, ModelThrottledError, ModelTimeoutError

TITAN = "amazon.titan-embed-text-v2:0"
COHERE = "cohere.embed-multilingual-v3"


class Runtime:
    """A real bedrock-runtime client under a Stubber, keeping the request bodies it sends."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "bedrock-runtime",
            region_name="eu-west-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        self.stubber = Stubber(self.client)
        self.bodies: list[dict[str, Any]] = []
        self.client.meta.events.register(
            "provide-client-params.bedrock-runtime.InvokeModel", self._keep_body
        )

    def _keep_body(self, params: dict[str, Any], **_: Any) -> None:
        self.bodies.append(json.loads(params["body"]))

    def reply(self, model_id: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.stubber.add_response(
            "invoke_model",
            {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"},
            {
                "modelId": model_id,
                "body": ANY,
                "contentType": "application/json",
                "accept": "application/json",
            },
        )


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    stubbed = Runtime()
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def is_unit(vector: list[float]) -> bool:
    return math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)


# -- Titan Text Embeddings V2: one text a call -------------------------------------------------
def test_titan_sends_one_text_a_call_and_reads_the_embedding(runtime: Runtime) -> None:
    # Given Titan replying to two calls, the second with a vector not of unit length
    runtime.reply(TITAN, {"embedding": [0.6, 0.8, 0.0], "inputTextTokenCount": 7})
    runtime.reply(TITAN, {"embedding": [0.0, 3.0, 4.0], "inputTextTokenCount": 6})
    embedder = BedrockEmbedder(TITAN, client=runtime.client)

    # When two texts are embedded
    vectors = embedder.embed(
        ["How much is shipping to Austria?", "¿Cuánto cuesta el envío a Canarias?"]
    )

    # Then each text is sent in a call of its own, asking for 1024 normalised dimensions
    assert runtime.bodies == [
        {"inputText": "How much is shipping to Austria?", "dimensions": 1024, "normalize": True},
        {"inputText": "¿Cuánto cuesta el envío a Canarias?", "dimensions": 1024, "normalize": True},
    ]
    # And each embedding is read back, in order
    assert vectors[0] == pytest.approx([0.6, 0.8, 0.0])
    # normalised here as well, whatever the model returns
    assert vectors[1] == pytest.approx([0.0, 0.6, 0.8])
    assert all(is_unit(vector) for vector in vectors)


def test_titan_asks_for_the_configured_dimensions(runtime: Runtime) -> None:
    # Given a Titan embedder configured for 256 dimensions
    runtime.reply(TITAN, {"embedding": [1.0, 0.0], "inputTextTokenCount": 3})
    embedder = BedrockEmbedder(TITAN, client=runtime.client, dimensions=256)

    # When it embeds a text
    embedder.embed(["Cirrus 2"])

    # Then the request asks for 256 dimensions
    assert runtime.bodies[0]["dimensions"] == 256


# -- Cohere Embed v3: many texts a call ---------------------------------------------------------
def test_cohere_sends_the_texts_together_and_reads_every_embedding(runtime: Runtime) -> None:
    # Given two questions, and Cohere replying with an embedding for each
    texts = ["Wohin liefert ihr?", "Was kostet der Versand nach Spanien?"]
    runtime.reply(
        COHERE,
        {
            "id": "3c9b6b4e",
            "response_type": "embeddings_floats",
            "texts": texts,
            "embeddings": [[2.0, 0.0], [1.0, 1.0]],
        },
    )

    # When they are embedded
    vectors = BedrockEmbedder(COHERE, client=runtime.client).embed(texts)

    # Then they are sent together, as search queries, truncated at the end if too long
    assert runtime.bodies == [{"texts": texts, "input_type": "search_query", "truncate": "END"}]
    # And each embedding is read back, normalised, in order
    assert vectors[0] == pytest.approx([1.0, 0.0])
    assert vectors[1] == pytest.approx([math.sqrt(0.5), math.sqrt(0.5)])


def test_cohere_reads_the_by_type_reply_too(runtime: Runtime) -> None:
    # Given Cohere replying with its embeddings by type
    runtime.reply(
        COHERE,
        {"id": "a1", "response_type": "embeddings_by_type", "embeddings": {"float": [[0.0, 5.0]]}},
    )

    # When a text is embedded
    vectors = BedrockEmbedder(COHERE, client=runtime.client).embed(["Cirrus 3"])

    # Then the float embedding is read, normalised
    assert vectors == [[0.0, 1.0]]


def test_cohere_sends_at_most_96_texts_a_call_of_at_most_2048_characters(
    runtime: Runtime,
) -> None:
    # Given 97 texts, the first of 3000 characters, and Cohere replying to two calls
    texts = [f"question {n}" for n in range(97)]
    texts[0] = "x" * 3000
    runtime.reply(COHERE, {"embeddings": [[1.0, 0.0]] * 96})
    runtime.reply(COHERE, {"embeddings": [[0.0, 1.0]]})

    # When they are embedded
    vectors = BedrockEmbedder(COHERE, client=runtime.client).embed(texts)

    # Then they are sent 96 and 1, the long one cut to 2048 characters
    assert [len(body["texts"]) for body in runtime.bodies] == [96, 1]
    assert runtime.bodies[0]["texts"][0] == "x" * 2048
    assert runtime.bodies[1]["texts"] == ["question 96"]
    # And every embedding comes back, in order
    assert len(vectors) == 97
    assert vectors[-1] == [0.0, 1.0]


@pytest.mark.parametrize(
    ("model_id", "payload"),
    [
        (TITAN, {"inputTextTokenCount": 3}),
        (TITAN, {"embedding": []}),
        (TITAN, {"embedding": ["a", "b"]}),
        (COHERE, {"embeddings": []}),
        (COHERE, {"embeddings": {"int8": [[1, 2]]}}),
        (COHERE, {"message": "unexpected"}),
    ],
)
def test_a_reply_without_usable_embeddings_is_an_invocation_error(
    runtime: Runtime, model_id: str, payload: dict[str, Any]
) -> None:
    # Given a reply without usable embeddings
    runtime.reply(model_id, payload)
    embedder = BedrockEmbedder(model_id, client=runtime.client)

    # When / Then embedding raises an invocation error
    with pytest.raises(ModelInvocationError):
        embedder.embed(["Cirrus 2"])


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", [TITAN, COHERE])
@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 429, ModelThrottledError),
        ("throttlingException", 429, ModelThrottledError),  # matched case-insensitively
        ("ServiceUnavailableException", 503, ModelThrottledError),
        ("InternalServerException", 500, ModelThrottledError),
        ("ModelNotReadyException", 429, ModelThrottledError),
        ("SomethingNewException", 502, ModelThrottledError),  # any 5xx is worth a retry
        ("ModelTimeoutException", 408, ModelTimeoutError),
        ("ValidationException", 400, ModelInvocationError),
        ("AccessDeniedException", 403, ModelInvocationError),
        ("ResourceNotFoundException", 404, ModelInvocationError),
    ],
)
def test_provider_errors_become_typed_errors(
    runtime: Runtime, model_id: str, code: str, status: int, error: type[Exception]
) -> None:
    # Given InvokeModel failing with the provider's error code and status
    runtime.stubber.add_client_error(
        "invoke_model", service_error_code=code, http_status_code=status
    )
    embedder = BedrockEmbedder(model_id, client=runtime.client)

    # When / Then embedding raises the typed error of that failure
    with pytest.raises(error):
        embedder.embed(["Cirrus 2"])


class _SlowClient:
    def invoke_model(self, **_: Any) -> dict[str, Any]:
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")


def test_a_read_timeout_is_a_model_timeout() -> None:
    # Given a client whose reads time out
    embedder = BedrockEmbedder(TITAN, client=_SlowClient())

    # When / Then embedding raises a model timeout
    with pytest.raises(ModelTimeoutError):
        embedder.embed(["Cirrus 2"])


# -- the client the composition root gives it --------------------------------------------------
def test_the_registry_asks_the_factory_for_one_attempt_and_a_short_timeout() -> None:
    # Given the one client factory
    reset_clients()
    try:
        # When the registry builds a Bedrock embedder through it
        embedder = embedder_for(f"bedrock:{COHERE}", aws_client)

        # Then its client makes one attempt and waits 3 seconds at most
        assert isinstance(embedder, BedrockEmbedder)
        config = embedder._client.meta.config
        assert config.read_timeout == 3.0
        assert config.retries["total_max_attempts"] == 1
    finally:
        reset_clients()
