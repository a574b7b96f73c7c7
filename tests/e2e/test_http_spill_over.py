"""Spill-over over HTTP: the answer route names the stack's self-hosted SageMaker endpoint
first and a Bedrock model after it (docs/deploy.md, "A self-hosted model"). When the endpoint
throttles, is overloaded or is scaled to zero, the chain - run by the local server, the real
definition and handlers - answers with the Bedrock model, and counts the fallback.

The two providers are botocore clients stubbed with the service models' own error shapes: what
SageMaker answers in each case, as its runtime API documents it (InvokeEndpoint's modeled
errors) or AWS sends it unmodeled (ThrottlingException), and a Converse reply. Nothing leaves
the machine. Each case queues one failure per attempt the route makes on the endpoint
(CONCIERGE_MODEL_ATTEMPTS), so a case that did not fall back would leave Bedrock's reply
unused and fail the stubs' check.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from e2e.http_support import ChatApi, assert_chat_reply, empty_tables, history_items, serving

from concierge import observability, wiring
from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime

ENDPOINT = "concierge-test-self-hosted"
SELF_HOSTED = f"sagemaker:{ENDPOINT}:messages"
FALLBACK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
FALLBACK = f"bedrock:{FALLBACK_MODEL}"
ATTEMPTS = 2
QUESTION = "How long does it take to get my money back after I send something back?"
FALLBACK_ANSWER = "Refunds reach your account within 14 days of the return arriving. [1]"


@dataclass(frozen=True)
class Failure:
    """How InvokeEndpoint fails: an error code, its HTTP status, and its modeled fields."""

    code: str
    status: int
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


FAILURES = {
    # Requests beyond the endpoint's invocation rate: unmodeled, sent as AWS's throttling.
    "throttled": Failure("ThrottlingException", 400, "Rate exceeded"),
    # The container is overloaded and says so: SageMaker wraps its 503 in a ModelError.
    "overloaded-container": Failure(
        "ModelError",
        424,
        'Received server error (503) from primary with message "busy".',
        {"OriginalStatusCode": 503, "OriginalMessage": "busy"},
    ),
    # SageMaker itself has no capacity for the request.
    "overloaded-service": Failure("ServiceUnavailable", 503, "Service unavailable"),
    # Scaled to zero: an endpoint whose inference component has no copy answers a
    # ValidationError while it scales out again.
    "scaled-to-zero": Failure(
        "ValidationError",
        400,
        "Inference Component has no capacity to process this request. ApplicationAutoScaling "
        "may be in-progress (if configured) or try to increase the capacity by invoking "
        "UpdateInferenceComponentRuntimeConfig API.",
    ),
}


class Providers:
    """The SageMaker runtime and Bedrock runtime clients the chain gets, stubbed anew per test."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        self.reset()

    def reset(self) -> None:
        for stubber in self.stubbers.values():
            stubber.deactivate()
        self.clients = {
            service: boto3.client(
                service,
                region_name="us-east-1",
                aws_access_key_id="e2e-dummy",
                aws_secret_access_key="e2e-dummy",
            )
            for service in ("sagemaker-runtime", "bedrock-runtime")
        }
        self.stubbers = {service: Stubber(client) for service, client in self.clients.items()}
        for stubber in self.stubbers.values():
            stubber.activate()

    def fail_endpoint(self, failure: Failure, times: int) -> None:
        for _ in range(times):
            self.stubbers["sagemaker-runtime"].add_client_error(
                "invoke_endpoint",
                service_error_code=failure.code,
                service_message=failure.message,
                http_status_code=failure.status,
                modeled_fields=failure.fields or None,
            )

    def answer_with_bedrock(self, text: str) -> None:
        self.stubbers["bedrock-runtime"].add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 900, "outputTokens": 20, "totalTokens": 920},
                "metrics": {"latencyMs": 400},
            },
        )

    def assert_all_used(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@dataclass(frozen=True)
class SpillOver:
    api: ChatApi
    runtime: LocalRuntime
    providers: Providers


@pytest.fixture(scope="module")
def spill_over(repo_root: Path, sample_index: tuple[Path, IndexFile]) -> Iterator[SpillOver]:
    """The local server with the answer route self-hosted first, Bedrock second, and the
    functions' metrics printed as in Lambda."""
    providers = Providers()
    real_factory = wiring.aws_client

    def clients(service: str, read_timeout: float | None = None, region: str | None = None) -> Any:
        if service in providers.clients:
            return providers.clients[service]
        return real_factory(service, read_timeout, region)

    environ = {
        "CONCIERGE_ANSWER_MODEL": SELF_HOSTED,
        "CONCIERGE_ANSWER_FALLBACKS": FALLBACK,
        "CONCIERGE_MODEL_ATTEMPTS": str(ATTEMPTS),
        "CONCIERGE_RETRY_BASE_DELAY_MS": "0",
        "POWERTOOLS_METRICS_DISABLED": "false",
        # Real-provider specs keep the process's credentials: dummy ones, never used.
        "AWS_ACCESS_KEY_ID": "e2e-dummy",
        "AWS_SECRET_ACCESS_KEY": "e2e-dummy",
    }
    path, index = sample_index
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wiring, "aws_client", clients)
        # In Lambda the api function's Metrics takes its namespace from the environment when
        # the package is imported; this process imported it before the runtime set one.
        patch.setattr(observability.metrics.provider, "namespace", "Concierge")
        with (
            LocalRuntime(repo_root, path, index.kb_version, environ=environ) as runtime,
            serving(runtime) as api,
        ):
            yield SpillOver(api, runtime, providers)
    for stubber in providers.stubbers.values():
        stubber.deactivate()


@pytest.fixture
def spilling(spill_over: SpillOver) -> Iterator[SpillOver]:
    """Empty tables and fresh stubs for each test; every queued reply must have been used."""
    empty_tables(spill_over.runtime)
    spill_over.providers.reset()
    yield spill_over
    spill_over.providers.assert_all_used()


def answer_metrics(printed: str) -> dict[str, float]:
    """The answer step's metrics among the printed EMF documents: name -> value."""
    values: dict[str, float] = {}
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or document.get("step") != "answer":
            continue
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                # Powertools writes each value as a list of the values added.
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_a_failing_self_hosted_endpoint_spills_over_to_bedrock_and_counts_it(
    spilling: SpillOver, failure: Failure, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the endpoint failing this way on every attempt, and Bedrock answering
    spilling.providers.fail_endpoint(failure, ATTEMPTS)
    spilling.providers.answer_with_bedrock(FALLBACK_ANSWER)
    capsys.readouterr()

    # When a question is asked over HTTP
    body = assert_chat_reply(spilling.api.chat(QUESTION))
    printed = capsys.readouterr().out

    # Then the answer is Bedrock's, with its citation, and one model call is counted
    assert body["answer"].startswith("Refunds reach your account within 14 days")
    assert body["citations"], body
    assert body["usage"]["output_tokens"] >= 20
    # And the turn records the fallback as the model that answered; a fallback's answer is
    # not cached
    (turn,) = history_items(spilling.runtime)
    assert turn["answer_model"]["S"] == FALLBACK
    assert body["cached"] is False
    # And the answer step counted the hand-over to the fallback and the retry before it
    metrics = answer_metrics(printed)
    assert metrics["ModelFallbacks"] == 1
    assert metrics["ModelRetries"] == ATTEMPTS - 1
    assert metrics["LlmCalls"] == 1


def test_a_serving_endpoint_answers_itself_without_a_fallback(
    spilling: SpillOver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the endpoint answering (the OpenAI-style chat completion of a messages container)
    reply = {
        "choices": [
            {"message": {"role": "assistant", "content": "Within 14 days. [1]"}, "index": 0}
        ],
        "usage": {"prompt_tokens": 800, "completion_tokens": 8},
    }
    raw = json.dumps(reply).encode("utf-8")
    spilling.providers.stubbers["sagemaker-runtime"].add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"},
    )
    capsys.readouterr()

    # When a question is asked over HTTP
    body = assert_chat_reply(spilling.api.chat(QUESTION))
    printed = capsys.readouterr().out

    # Then the endpoint wrote the answer, and no fallback was counted
    (turn,) = history_items(spilling.runtime)
    assert body["answer"].startswith("Within 14 days")
    assert turn["answer_model"]["S"] == SELF_HOSTED
    assert answer_metrics(printed)["ModelFallbacks"] == 0


MALFORMED = {
    # A container that answers, but not in JSON (an HTML error page of a proxy, say).
    "not-json": b"<html><body>502 Bad Gateway</body></html>",
    # JSON of another shape than a chat completion (a TGI reply to a messages request).
    "unexpected-shape": json.dumps([{"generated_text": "Within 14 days."}]).encode("utf-8"),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_an_unreadable_endpoint_reply_goes_to_the_fallback(
    spilling: SpillOver, raw: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the endpoint answering with a body its adapter cannot read, and Bedrock answering
    spilling.providers.stubbers["sagemaker-runtime"].add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"},
    )
    spilling.providers.answer_with_bedrock(FALLBACK_ANSWER)
    capsys.readouterr()

    # When a question is asked over HTTP
    body = assert_chat_reply(spilling.api.chat(QUESTION))
    printed = capsys.readouterr().out

    # Then Bedrock answered at once (no retry of the endpoint), and the fallback is counted,
    # where the reply used to fail the request with a 502 while the fallback went unused
    assert body["answer"].startswith("Refunds reach your account within 14 days")
    (turn,) = history_items(spilling.runtime)
    assert turn["answer_model"]["S"] == FALLBACK
    metrics = answer_metrics(printed)
    assert metrics["ModelFallbacks"] == 1
    assert metrics["ModelRetries"] == 0
