"""Amazon SageMaker real-time endpoints (InvokeEndpoint): JumpStart and self-hosted models.

Serving containers speak one of two JSON payload families:

- "messages": the OpenAI-style chat format of the LMI (DJL) and TGI Messages APIs;
- "inputs": the older text-generation format of TGI and JumpStart text models.
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

from botocore.exceptions import ClientError

from concierge.adapters import TimedClient
from concierge.adapters.aws_errors import MODEL, AwsError, translated
from concierge.adapters.llm.openai_compat import (
    chat_messages,
    parse_chat_completion,
    rendered_input,
    reply_with_usage,
    token_count,
)
from concierge.adapters.llm.port import ModelReply, ModelRequest
from concierge.errors import (
    ConciergeError,
    ConfigurationError,
    ModelInvocationError,
    ModelReplyError,
    ModelThrottledError,
    ModelTimeoutError,
)

Payload = Literal["messages", "inputs"]

# The container itself failed: its own HTTP status says whether a retry may help.
_MODEL_ERROR = "modelerror"
# What InvokeEndpoint answers (HTTP 400) when the endpoint cannot serve now: scaled to zero (an
# inference component without a copy), not in service, or not there at all. The request is the
# adapter's own (the contract tests hold its shape), so another model of the route can answer
# it: the endpoint counts as unavailable, like a throttled one. AWS's message, which tells these
# apart, is never read: it is AWS's wording, and may change.
_NOT_SERVING = "validationerror"
_HTTP_TOO_MANY_REQUESTS = 429
_HTTP_REQUEST_TIMEOUT = 408


class SageMakerEndpointModel:
    def __init__(self, endpoint_name: str, payload: Payload, client: TimedClient) -> None:
        if payload not in get_args(Payload):
            raise ConfigurationError(
                f"unknown SageMaker payload {payload!r}: use 'messages' or 'inputs'"
            )
        self.endpoint_name = endpoint_name
        self.payload = payload
        self.spec = f"sagemaker:{endpoint_name}:{payload}"
        self._client = client

    def _runtime(self, timeout_s: float) -> Any:
        # Whole seconds keep the client cache small; never wait past the budget.
        return self._client(float(max(1, int(timeout_s))))

    def generate(self, request: ModelRequest) -> ModelReply:
        body = _messages_body(request) if self.payload == "messages" else _inputs_body(request)
        with translated(MODEL, self.spec, refine=_container_failure):
            response = self._runtime(request.timeout_s).invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body).encode("utf-8"),
            )
            # The body streams: reading it can time out too.
            raw = _read(response["Body"])
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelReplyError(f"{self.spec} returned a body that is not JSON") from exc
        if self.payload == "messages":
            return parse_chat_completion(payload, request, self.spec)
        return _parse_generated_text(payload, request, self.spec)


def _messages_body(request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": chat_messages(request),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
    }
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    return body


def _inputs_body(request: ModelRequest) -> dict[str, Any]:
    parameters: dict[str, Any] = {"max_new_tokens": request.max_tokens}
    # TGI rejects a temperature of 0 ("must be strictly positive"): greedy decoding says it.
    if request.temperature > 0:
        parameters["temperature"] = request.temperature
    else:
        parameters["do_sample"] = False
    # TGI wants 0 < top_p < 1; 1.0 means "no nucleus filter", which is the default anyway.
    if request.top_p < 1.0:
        parameters["top_p"] = request.top_p
    if request.stop_sequences:
        parameters["stop"] = list(request.stop_sequences)
    parameters["return_full_text"] = False
    return {"inputs": rendered_input(request), "parameters": parameters}


def _read(body: Any) -> bytes:
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    data: bytes = body.read()
    return data


def _parse_generated_text(payload: Any, request: ModelRequest, spec: str) -> ModelReply:
    """`[{"generated_text": ...}]` or `{"generated_text": ...}`, with TGI `details` if any."""
    generation = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(generation, dict) or not isinstance(generation.get("generated_text"), str):
        raise ModelReplyError(f"{spec} returned an unexpected response shape")
    details = generation.get("details")
    if not isinstance(details, dict):
        details = {}
    prefill = details.get("prefill")
    # TGI lists the prompt tokens only when asked (decoder_input_details): absent means unknown.
    input_tokens = len(prefill) if isinstance(prefill, list) and prefill else None
    return reply_with_usage(
        request,
        spec,
        generation["generated_text"],
        input_tokens,
        token_count(details.get("generated_tokens")),
    )


def _original_status(exc: ClientError) -> int | None:
    """The container's own HTTP status of a ModelError (a modeled field, or in `Error`)."""
    response: dict[str, Any] = dict(exc.response)
    for source in (response, response.get("Error", {})):
        try:
            return int(source["OriginalStatusCode"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _container_failure(exc: ClientError, error: AwsError, spec: str) -> ConciergeError | None:
    """A ModelError is the container's own failure: its HTTP status, not SageMaker's, says
    whether a retry may help. A ValidationError is an endpoint that cannot serve now: the route
    goes on to its next model. Anything else takes the common reading."""
    if error.code == _NOT_SERVING:
        return ModelThrottledError(
            f"{spec} is not serving ({error.describe()}: scaled to zero, not in service or "
            "not found)"
        )
    if error.code != _MODEL_ERROR or error.retryable:
        return None
    status = _original_status(exc)
    if status is not None and (status == _HTTP_TOO_MANY_REQUESTS or 500 <= status < 600):
        return ModelThrottledError(f"{spec} model container failed ({error.name}, HTTP {status})")
    if status == _HTTP_REQUEST_TIMEOUT:
        return ModelTimeoutError(f"{spec} model container timed out ({error.name}, HTTP {status})")
    return ModelInvocationError(
        f"{spec} model container rejected the request ({error.name}, HTTP {status or 'unknown'})"
    )
