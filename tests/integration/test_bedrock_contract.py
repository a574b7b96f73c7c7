"""The Bedrock Converse contract, checked by botocore's Stubber against the service model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from concierge.adapters.llm.bedrock import BedrockConverseModel
from concierge.adapters.llm.port import ModelRequest
from concierge.errors import ModelInvocationError, ModelThrottledError, ModelTimeoutError

MODEL_ID = (
    "eu.anthropic.claude-3-5-sonnet-20240620-v1:0"  # an inference profile id works as a model id
)


@pytest.fixture
def runtime_client() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _request() -> ModelRequest:
    return ModelRequest(
        task="answer",
        system="Answer from the passages.",
        prompt="Question: what do you sell?",
        max_tokens=800,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=("</answer>",),
        timeout_s=20,
    )


def test_converse_request_and_reply(runtime_client: tuple[Any, Stubber]) -> None:
    # Given Converse replying with usage to exactly the expected request (Stubber compares the
    # parameters, and validates them against the service model)
    client, stubber = runtime_client
    stubber.add_response(
        "converse",
        {
            "output": {
                "message": {"role": "assistant", "content": [{"text": "We sell tents. [1]"}]}
            },
            "stopReason": "end_turn",
            "usage": {"inputTokens": 321, "outputTokens": 12, "totalTokens": 333},
            "metrics": {"latencyMs": 420},
        },
        {
            "modelId": MODEL_ID,
            "system": [{"text": "Answer from the passages."}],
            "messages": [{"role": "user", "content": [{"text": "Question: what do you sell?"}]}],
            "inferenceConfig": {
                "maxTokens": 800,
                "temperature": 0.2,
                "topP": 0.9,
                "stopSequences": ["</answer>"],
            },
        },
    )
    model = BedrockConverseModel(MODEL_ID, client=lambda _timeout: client)

    # When the model generates
    reply = model.generate(_request())

    # Then the reply carries the text, the reported usage and the model's spec
    assert reply.text == "We sell tents. [1]"
    assert (reply.input_tokens, reply.output_tokens, reply.estimated) == (321, 12, False)
    assert reply.model == f"bedrock:{MODEL_ID}"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", ModelThrottledError),
        ("throttlingException", ModelThrottledError),  # codes are matched case-insensitively
        ("ServiceUnavailableException", ModelThrottledError),
        ("ModelNotReadyException", ModelThrottledError),
        ("ModelTimeoutException", ModelTimeoutError),
        ("ValidationException", ModelInvocationError),
        ("AccessDeniedException", ModelInvocationError),
        ("ResourceNotFoundException", ModelInvocationError),
    ],
)
def test_provider_errors_become_typed_errors(
    runtime_client: tuple[Any, Stubber], code: str, error: type[Exception]
) -> None:
    # Given Converse failing with the provider's error code
    client, stubber = runtime_client
    stubber.add_client_error("converse", service_error_code=code, http_status_code=400)
    model = BedrockConverseModel(MODEL_ID, client=lambda _timeout: client)

    # When / Then generating raises the typed error of that code
    with pytest.raises(error):
        model.generate(_request())


def test_guardrail_and_latency_options_are_sent(runtime_client: tuple[Any, Stubber]) -> None:
    # Given a model with a guardrail and optimized latency, and Converse expecting both options
    # and replying that the guardrail intervened
    client, stubber = runtime_client
    stubber.add_response(
        "converse",
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [{"text": "Sorry, I can't help with that."}],
                }
            },
            "stopReason": "guardrail_intervened",
            "usage": {"inputTokens": 50, "outputTokens": 8, "totalTokens": 58},
            "metrics": {"latencyMs": 120},
        },
        {
            "modelId": MODEL_ID,
            "system": [{"text": "Answer from the passages."}],
            # No part of the prompt is marked as the user's: the guardrail assesses all of it.
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"guardContent": {"text": {"text": "Question: what do you sell?"}}}
                    ],
                }
            ],
            "inferenceConfig": {
                "maxTokens": 800,
                "temperature": 0.2,
                "topP": 0.9,
                "stopSequences": ["</answer>"],
            },
            "guardrailConfig": {
                "guardrailIdentifier": "gr-123",
                "guardrailVersion": "3",
                "trace": "enabled",
            },
            "performanceConfig": {"latency": "optimized"},
        },
    )
    model = BedrockConverseModel(
        MODEL_ID,
        client=lambda _timeout: client,
        guardrail_id="gr-123",
        guardrail_version="3",
        latency="optimized",
    )

    # When the model generates
    reply = model.generate(_request())

    # Then the request carried both options (Stubber compares them), and the reply is a refusal
    assert reply.refused is True
    assert reply.text == "Sorry, I can't help with that."


def test_connection_failures_are_retryable() -> None:
    from botocore.exceptions import EndpointConnectionError

    # Given a client that cannot reach the endpoint
    class Unreachable:
        def converse(self, **kwargs: Any) -> Any:
            raise EndpointConnectionError(
                endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com"
            )

    model = BedrockConverseModel(MODEL_ID, client=lambda _timeout: Unreachable())

    # When / Then generating raises the retryable error
    with pytest.raises(ModelThrottledError):
        model.generate(_request())
