"""The SageMaker InvokeEndpoint contract, checked by botocore's Stubber against the service model."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeoutError

from concierge.adapters.llm.port import ModelRequest, estimate_tokens
from concierge.adapters.llm.registry import model_for
from concierge.adapters.llm.sagemaker import SageMakerEndpointModel
from concierge.config import ModelRuntimeSettings
from concierge.errors import (
    ConfigurationError,
    ModelInvocationError,
    ModelThrottledError,
    ModelTimeoutError,
)

ENDPOINT = "jumpstart-dft-hf-llm-mistral-7b-instruct"
SYSTEM = "Answer from the passages."
PROMPT = "Question: what do you sell?"
RENDERED = f"{SYSTEM}\n\n{PROMPT}"
OPERATION = "InvokeEndpoint"


def _client(config: Config | None = None) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


class Runtime:
    """A stubbed runtime client that also keeps the parameters of every call."""

    def __init__(self) -> None:
        self.client = _client()
        self.stubber = Stubber(self.client)
        self.calls: list[dict[str, Any]] = []
        self.client.meta.events.register(
            f"before-parameter-build.sagemaker-runtime.{OPERATION}", self._record
        )

    def _record(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.calls.append(dict(params))

    def respond(self, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.stubber.add_response(
            "invoke_endpoint",
            {
                "Body": StreamingBody(io.BytesIO(raw), len(raw)),
                "ContentType": "application/json",
                "InvokedProductionVariant": "AllTraffic",
            },
            {
                "EndpointName": ENDPOINT,
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": ANY,
            },
        )

    def sent_body(self) -> Any:
        (call,) = self.calls
        return json.loads(call["Body"])


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    stubbed = Runtime()
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def _request(
    temperature: float = 0.2, top_p: float = 0.9, stop: tuple[str, ...] = ("</answer>",)
) -> ModelRequest:
    return ModelRequest(
        task="answer",
        system=SYSTEM,
        prompt=PROMPT,
        max_tokens=800,
        temperature=temperature,
        top_p=top_p,
        stop_sequences=stop,
        timeout_s=20,
    )


def _chat_completion(text: str, usage: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "lmi",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


# --- the "messages" family (LMI / TGI Messages API) ---


def test_messages_request_and_reply(runtime: Runtime) -> None:
    # Given an endpoint that reports usage
    runtime.respond(
        _chat_completion("We sell tents. [1]", {"prompt_tokens": 321, "completion_tokens": 12})
    )
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When the model generates
    reply = model.generate(_request())

    # Then the body is an OpenAI-style chat request
    assert runtime.sent_body() == {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 800,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["</answer>"],
    }
    # And the reply carries the reported usage
    assert reply.text == "We sell tents. [1]"
    assert (reply.input_tokens, reply.output_tokens, reply.estimated) == (321, 12, False)
    assert reply.model == f"sagemaker:{ENDPOINT}:messages" == model.spec


def test_messages_without_stops_or_usage(runtime: Runtime) -> None:
    # Given an endpoint that does not report usage
    runtime.respond(_chat_completion("We sell tents."))
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When the model generates without stop sequences
    reply = model.generate(_request(stop=()))

    # Then the body has no stop list, and the reply's usage is estimated from the texts
    assert "stop" not in runtime.sent_body()
    assert reply.estimated is True
    assert reply.input_tokens == estimate_tokens(RENDERED)
    assert reply.output_tokens == estimate_tokens("We sell tents.")


# --- the "inputs" family (TGI / JumpStart text generation) ---


def test_inputs_request(runtime: Runtime) -> None:
    # Given a text-generation endpoint
    runtime.respond([{"generated_text": "We sell tents."}])
    model = SageMakerEndpointModel(ENDPOINT, "inputs", client=lambda _timeout: runtime.client)

    # When the model generates
    model.generate(_request())

    # Then the body is the rendered prompt with TGI's generation parameters
    assert runtime.sent_body() == {
        "inputs": RENDERED,
        "parameters": {
            "max_new_tokens": 800,
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["</answer>"],
            "return_full_text": False,
        },
    }


def test_inputs_greedy_request_leaves_out_what_tgi_rejects(runtime: Runtime) -> None:
    # Given a text-generation endpoint
    runtime.respond([{"generated_text": "Tents."}])
    model = SageMakerEndpointModel(ENDPOINT, "inputs", client=lambda _timeout: runtime.client)

    # When the model generates greedily: temperature 0, top_p 1.0, no stop sequences
    model.generate(_request(temperature=0.0, top_p=1.0, stop=()))

    # Then greedy decoding is asked for explicitly, since TGI rejects temperature 0 and
    # top_p 1.0
    assert runtime.sent_body() == {
        "inputs": RENDERED,
        "parameters": {"max_new_tokens": 800, "do_sample": False, "return_full_text": False},
    }


@pytest.mark.parametrize(
    ("payload", "tokens", "estimated"),
    [
        ([{"generated_text": "We sell tents."}], None, True),
        ({"generated_text": "We sell tents."}, None, True),
        (
            [
                {
                    "generated_text": "We sell tents.",
                    "details": {
                        "finish_reason": "eos_token",
                        "generated_tokens": 5,
                        "prefill": [{"id": i, "text": "t", "logprob": None} for i in range(17)],
                        "tokens": [],
                    },
                }
            ],
            (17, 5),
            False,
        ),
        (
            {
                "generated_text": "We sell tents.",
                "details": {"finish_reason": "length", "generated_tokens": 5, "prefill": []},
            },
            (estimate_tokens(RENDERED), 5),
            True,
        ),
    ],
    ids=["list", "dict", "list-with-details", "dict-with-details-no-prefill"],
)
def test_inputs_response_shapes(
    runtime: Runtime, payload: Any, tokens: tuple[int, int] | None, estimated: bool
) -> None:
    # Given a text-generation endpoint replying in one of the shapes it may use
    runtime.respond(payload)
    model = SageMakerEndpointModel(ENDPOINT, "inputs", client=lambda _timeout: runtime.client)

    # When the model generates
    reply = model.generate(_request())

    # Then the text is read, with the token counts the reply gives, estimated otherwise
    assert reply.text == "We sell tents."
    expected = tokens or (estimate_tokens(RENDERED), estimate_tokens("We sell tents."))
    assert (reply.input_tokens, reply.output_tokens) == expected
    assert reply.estimated is estimated


@pytest.mark.parametrize(
    ("payload_family", "body"),
    [
        ("inputs", {"outputs": "We sell tents."}),
        ("inputs", []),
        ("inputs", [{"generation": "We sell tents."}]),
        ("inputs", {"generated_text": None}),
        ("inputs", "We sell tents."),
        ("inputs", b"<html>not json</html>"),
        ("messages", {"choices": []}),
        ("messages", {"generated_text": "We sell tents."}),
        ("messages", b"\xff\xfe"),
    ],
)
def test_unexpected_responses_are_invocation_errors(
    runtime: Runtime, payload_family: Any, body: Any
) -> None:
    # Given an endpoint replying with a body its payload family does not produce
    runtime.respond(body)
    model = SageMakerEndpointModel(ENDPOINT, payload_family, client=lambda _timeout: runtime.client)

    # When / Then generating raises an invocation error
    with pytest.raises(ModelInvocationError):
        model.generate(_request())


# --- errors ---


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, ModelThrottledError),
        ("throttlingexception", 400, ModelThrottledError),  # matched case-insensitively
        ("ServiceUnavailable", 503, ModelThrottledError),
        ("ServiceUnavailableException", 503, ModelThrottledError),
        ("InternalFailure", 500, ModelThrottledError),
        ("ModelNotReadyException", 429, ModelThrottledError),
        ("InternalDependencyException", 530, ModelThrottledError),
        # An endpoint scaled to zero, not in service or not found: unavailable, not wrong.
        ("ValidationError", 400, ModelThrottledError),
        ("AccessDeniedException", 403, ModelInvocationError),
        ("SomethingNew", 400, ModelInvocationError),
    ],
)
def test_service_errors_become_typed_errors(
    runtime: Runtime, code: str, status: int, error: type[Exception]
) -> None:
    # Given InvokeEndpoint failing with a service error
    runtime.stubber.add_client_error(
        "invoke_endpoint", service_error_code=code, http_status_code=status
    )
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When generating fails
    with pytest.raises(error) as raised:
        model.generate(_request())

    # Then the typed error names the model and the code, without the prompt
    message = str(raised.value)
    assert f"sagemaker:{ENDPOINT}:messages" in message
    assert code.lower() in message.lower()
    assert PROMPT not in message


def test_an_endpoint_scaled_to_zero_is_unavailable_so_the_route_falls_back(
    runtime: Runtime,
) -> None:
    # Given an endpoint whose inference component has no copy: SageMaker answers a
    # ValidationError while it scales out again
    runtime.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=(
            "Inference Component has no capacity to process this request. "
            "ApplicationAutoScaling may be in-progress (if configured) or try to increase the "
            "capacity by invoking UpdateInferenceComponentRuntimeConfig API."
        ),
        http_status_code=400,
    )
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When generating fails
    with pytest.raises(ModelThrottledError) as raised:
        model.generate(_request())

    # Then it is unavailable (worth the route's next model), says why in its own words, and
    # does not copy AWS's message
    message = str(raised.value)
    assert "is not serving" in message and "scaled to zero" in message
    assert "Inference Component" not in message


@pytest.mark.parametrize(
    ("original_status", "error"),
    [
        (429, ModelThrottledError),
        (500, ModelThrottledError),
        (503, ModelThrottledError),
        (408, ModelTimeoutError),
        (400, ModelInvocationError),
        (404, ModelInvocationError),
    ],
)
def test_model_errors_follow_the_container_status(
    runtime: Runtime, original_status: int, error: type[Exception]
) -> None:
    # Given a ModelError, the container's own failure: its status is a modeled field, and its
    # messages quote the prompt
    runtime.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f"Received client error from primary: {PROMPT}",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": original_status,
            "OriginalMessage": f"cannot handle {PROMPT}",
        },
    )
    model = SageMakerEndpointModel(ENDPOINT, "inputs", client=lambda _timeout: runtime.client)

    # When generating fails
    with pytest.raises(error) as raised:
        model.generate(_request())

    # Then the error is typed by the container's status, and names the model and ModelError
    # without the prompt
    message = str(raised.value)
    assert f"sagemaker:{ENDPOINT}:inputs" in message
    assert "modelerror" in message.lower()
    assert PROMPT not in message


@pytest.mark.parametrize(
    ("error_meta", "error"),
    [
        ({"OriginalStatusCode": "503"}, ModelThrottledError),
        ({"OriginalStatusCode": 408}, ModelTimeoutError),
        ({}, ModelInvocationError),
    ],
    ids=["status-in-error", "timeout-in-error", "no-status"],
)
def test_model_error_status_in_the_error_section(
    runtime: Runtime, error_meta: dict[str, Any], error: type[Exception]
) -> None:
    # Given a ModelError whose container status, if any, is in the error section
    runtime.stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="modelError",
        http_status_code=424,
        service_error_meta=error_meta,
    )
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When / Then generating raises the error of that status
    with pytest.raises(error):
        model.generate(_request())


@pytest.mark.parametrize(
    ("transport_error", "error"),
    [
        (ReadTimeoutError(endpoint_url="https://runtime.sagemaker"), ModelTimeoutError),
        # Not connected is not slow: unavailable, like any endpoint that cannot be reached.
        (ConnectTimeoutError(endpoint_url="https://runtime.sagemaker"), ModelThrottledError),
        (EndpointConnectionError(endpoint_url="https://runtime.sagemaker"), ModelThrottledError),
    ],
    ids=["read-timeout", "connect-timeout", "unreachable"],
)
def test_transport_errors_become_typed_errors(
    transport_error: Exception, error: type[Exception]
) -> None:
    # Given a real client whose HTTP send fails, without SDK retries so the error surfaces at once
    client = _client(Config(retries={"total_max_attempts": 1}))

    def fail(**kwargs: Any) -> None:
        raise transport_error

    client.meta.events.register(f"before-send.sagemaker-runtime.{OPERATION}", fail)
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: client)

    # When / Then generating raises the typed error of that failure
    with pytest.raises(error):
        model.generate(_request())


def test_body_read_timeout_is_a_timeout(runtime: Runtime) -> None:
    # Given an endpoint whose response headers arrive, then the streamed body stalls
    class StalledStream(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            raise URLLib3ReadTimeoutError(None, "https://runtime.sagemaker", "Read timed out.")  # type: ignore[arg-type]

    runtime.stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(StalledStream(), 100), "ContentType": "application/json"},
    )
    model = SageMakerEndpointModel(ENDPOINT, "messages", client=lambda _timeout: runtime.client)

    # When / Then generating times out
    with pytest.raises(ModelTimeoutError):
        model.generate(_request())


# --- client and configuration ---


@pytest.mark.parametrize(("timeout_s", "read_timeout"), [(20.7, 20.0), (0.4, 1.0)])
def test_the_client_read_timeout_fits_the_budget(
    runtime: Runtime, timeout_s: float, read_timeout: float
) -> None:
    # Given a model built by the registry through a client factory that records what it is
    # asked for
    asked: list[tuple[str, float | None]] = []

    def factory(service: str, read_timeout: float | None = None) -> Any:
        asked.append((service, read_timeout))
        return runtime.client

    runtime.respond(_chat_completion("Tents."))
    model = model_for(f"sagemaker:{ENDPOINT}:messages", ModelRuntimeSettings(), factory)

    # When it generates with this much time left
    model.generate(_request().model_copy(update={"timeout_s": timeout_s}))

    # Then it asks for one client, with a read timeout that fits the time left
    assert asked == [("sagemaker-runtime", read_timeout)]


def test_unknown_payload_family_is_a_configuration_error() -> None:
    # When / Then a model of a payload family that does not exist is a configuration error
    with pytest.raises(ConfigurationError):
        SageMakerEndpointModel(ENDPOINT, "completions", client=lambda _timeout: _client())  # type: ignore[arg-type]
