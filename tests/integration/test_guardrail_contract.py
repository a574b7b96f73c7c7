"""The Bedrock guardrail contracts, checked by botocore's Stubber against the service model:
ApplyGuardrail around SageMaker and OpenAI-compatible models, and Converse's guardrailConfig
with its trace."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from concierge.adapters.llm.bedrock import BedrockConverseModel
from concierge.adapters.llm.guardrail import GuardedModel, GuardrailChecker
from concierge.adapters.llm.port import ModelReply, ModelRequest
from concierge.adapters.llm.registry import model_for
from concierge.config import ModelRuntimeSettings
from concierge.errors import ModelInvocationError, ModelThrottledError, ModelTimeoutError
from concierge.models.http import Guardrail

GUARDRAIL_ID = "gr0abc123xyz"
GUARDRAIL_VERSION = "3"
MODEL_ID = "eu.anthropic.claude-3-5-sonnet-20240620-v1:0"
ENDPOINT = "jumpstart-dft-hf-llm-mistral-7b-instruct"
SYSTEM = "Answer from the passages."
# The user's words inside the prompt: what the guardrail assesses on input, not the passages.
QUESTION = "what do you sell?"
PASSAGES = "Passages: [1] We sell tents.\n\nQuestion: "
PROMPT = PASSAGES + QUESTION
BLOCKED_INPUT = "Sorry, I can't answer that question."
BLOCKED_OUTPUT = "Sorry, I can't share that answer."


def _bedrock_runtime() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = _bedrock_runtime()
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _request(timeout_s: float = 20) -> ModelRequest:
    return ModelRequest(
        task="answer",
        system=SYSTEM,
        prompt=PROMPT,
        guarded=QUESTION,
        max_tokens=800,
        temperature=0.2,
        top_p=0.9,
        timeout_s=timeout_s,
    )


class RecordingModel:
    """A model that answers one text and keeps the requests it was given."""

    spec = "openai:llama3.2:3b"

    def __init__(self, text: str = "We sell tents. [1]") -> None:
        self.text = text
        self.requests: list[ModelRequest] = []

    def generate(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return ModelReply(text=self.text, model=self.spec, input_tokens=40, output_tokens=9)


def _guarded(client: Any, inner: RecordingModel) -> GuardedModel:
    return GuardedModel(inner, GuardrailChecker(GUARDRAIL_ID, GUARDRAIL_VERSION, lambda _t: client))


# --- ApplyGuardrail response parts (valid for the service model) ---


def _usage() -> dict[str, int]:
    return {
        "topicPolicyUnits": 1,
        "contentPolicyUnits": 1,
        "wordPolicyUnits": 1,
        "sensitiveInformationPolicyUnits": 1,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
    }


def _passed() -> dict[str, Any]:
    return {"usage": _usage(), "action": "NONE", "outputs": [], "assessments": [{}]}


def _intervened(text: str, assessment: dict[str, Any]) -> dict[str, Any]:
    return {
        "usage": _usage(),
        "action": "GUARDRAIL_INTERVENED",
        "outputs": [{"text": text}],
        "assessments": [assessment],
    }


def _apply_params(source: str, text: str) -> dict[str, Any]:
    return {
        "guardrailIdentifier": GUARDRAIL_ID,
        "guardrailVersion": GUARDRAIL_VERSION,
        "source": source,
        "content": [{"text": {"text": text}}],
    }


PROMPT_ATTACK = {
    "contentPolicy": {
        "filters": [
            {
                "type": "PROMPT_ATTACK",
                "confidence": "HIGH",
                "filterStrength": "HIGH",
                "action": "BLOCKED",
                "detected": True,
            }
        ]
    }
}
DENIED_TOPIC = {
    "topicPolicy": {"topics": [{"name": "Investment advice", "type": "DENY", "action": "BLOCKED"}]}
}
EMAIL_MASKED = {
    "sensitiveInformationPolicy": {
        "piiEntities": [
            {"match": "ana@example.com", "type": "EMAIL", "action": "ANONYMIZED", "detected": True}
        ],
        "regexes": [],
    }
}


# --- ApplyGuardrail around models Bedrock does not serve ---


def test_the_registry_guards_a_sagemaker_model_on_both_sides(
    bedrock: tuple[Any, Stubber],
) -> None:
    # Given a guardrail configured, ApplyGuardrail expecting the prompt (INPUT) and then the
    # model's reply (OUTPUT) under the guardrail's id and version, passing both, and a SageMaker
    # endpoint that answers
    client, stubber = bedrock
    stubber.add_response("apply_guardrail", _passed(), _apply_params("INPUT", QUESTION))
    stubber.add_response("apply_guardrail", _passed(), _apply_params("OUTPUT", "We sell tents."))
    sagemaker = boto3.client(
        "sagemaker-runtime",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    raw = json.dumps({"choices": [{"message": {"content": "We sell tents."}}]}).encode()
    asked: list[tuple[str, float | None]] = []

    def factory(service: str, read_timeout: float | None = None) -> Any:
        asked.append((service, read_timeout))
        return client if service == "bedrock-runtime" else sagemaker

    runtime = ModelRuntimeSettings(
        bedrock_guardrail_id=GUARDRAIL_ID, bedrock_guardrail_version=GUARDRAIL_VERSION
    )
    model = model_for(f"sagemaker:{ENDPOINT}:messages", runtime, factory)

    # When it generates
    with Stubber(sagemaker) as endpoint:
        endpoint.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"},
            {
                "EndpointName": ENDPOINT,
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": ANY,
            },
        )
        reply = model.generate(_request(timeout_s=20.7))

    # Then both checks were sent as expected (Stubber compares them), the reply is the model's,
    # untouched, and every client came from the factory with a read timeout inside the budget
    assert (reply.text, reply.model, reply.guardrail) == (
        "We sell tents.",
        f"sagemaker:{ENDPOINT}:messages",
        None,
    )
    assert [service for service, _ in asked] == [
        "bedrock-runtime",
        "sagemaker-runtime",
        "bedrock-runtime",
    ]
    assert all(timeout is not None and 1 <= timeout <= 20 for _, timeout in asked)


def test_a_prompt_attack_is_blocked_before_the_model(bedrock: tuple[Any, Stubber]) -> None:
    # Given ApplyGuardrail blocking the prompt as a prompt attack
    client, stubber = bedrock
    stubber.add_response(
        "apply_guardrail",
        _intervened(BLOCKED_INPUT, PROMPT_ATTACK),
        _apply_params("INPUT", QUESTION),
    )
    inner = RecordingModel()

    # When the guarded model generates
    reply = _guarded(client, inner).generate(_request())

    # Then the model was never called, and the reply is the guardrail's message, free, with the
    # intervention on the input
    assert inner.requests == []
    assert (reply.text, reply.input_tokens, reply.output_tokens) == (BLOCKED_INPUT, 0, 0)
    assert reply.model == inner.spec
    assert reply.guardrail == Guardrail(action="blocked", source="input", reasons=["PROMPT_ATTACK"])
    assert reply.refused is True


def test_a_denied_topic_in_the_answer_replaces_it(bedrock: tuple[Any, Stubber]) -> None:
    # Given the prompt passing, and the model's answer blocked by a denied topic
    client, stubber = bedrock
    inner = RecordingModel("Buy shares of ACME now.")
    stubber.add_response("apply_guardrail", _passed(), _apply_params("INPUT", QUESTION))
    stubber.add_response(
        "apply_guardrail",
        _intervened(BLOCKED_OUTPUT, DENIED_TOPIC),
        _apply_params("OUTPUT", "Buy shares of ACME now."),
    )

    # When the guarded model generates
    reply = _guarded(client, inner).generate(_request())

    # Then the answer is the guardrail's message, the intervention is on the output and names
    # the topic, and the model's tokens still count (they were spent)
    assert reply.text == BLOCKED_OUTPUT
    assert reply.guardrail == Guardrail(
        action="blocked", source="output", reasons=["topic:Investment advice"]
    )
    assert (reply.input_tokens, reply.output_tokens) == (40, 9)


def test_personal_data_in_the_answer_is_masked(bedrock: tuple[Any, Stubber]) -> None:
    # Given the prompt passing, and the model's answer anonymised (an e-mail address masked)
    client, stubber = bedrock
    inner = RecordingModel("Write to ana@example.com. [1]")
    stubber.add_response("apply_guardrail", _passed(), _apply_params("INPUT", QUESTION))
    stubber.add_response(
        "apply_guardrail",
        _intervened("Write to {EMAIL}. [1]", EMAIL_MASKED),
        _apply_params("OUTPUT", "Write to ana@example.com. [1]"),
    )

    # When the guarded model generates
    reply = _guarded(client, inner).generate(_request())

    # Then the answer is the masked text, and the intervention says so, with the entity type
    assert reply.text == "Write to {EMAIL}. [1]"
    assert reply.guardrail == Guardrail(action="anonymized", source="output", reasons=["EMAIL"])
    assert reply.refused is False


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", ModelThrottledError),
        ("ServiceUnavailableException", ModelThrottledError),
        ("InternalServerException", ModelThrottledError),
        ("AccessDeniedException", ModelInvocationError),
        ("ResourceNotFoundException", ModelInvocationError),
        ("ValidationException", ModelInvocationError),
    ],
)
def test_guardrail_failures_are_the_model_errors(
    bedrock: tuple[Any, Stubber], code: str, error: type[Exception]
) -> None:
    # Given ApplyGuardrail failing with the service's error code
    client, stubber = bedrock
    stubber.add_client_error("apply_guardrail", service_error_code=code, http_status_code=400)
    inner = RecordingModel()

    # When / Then generating raises the error Converse raises for that code (throttling is
    # worth a retry, a rejection is not), and the model is not called
    with pytest.raises(error):
        _guarded(client, inner).generate(_request())
    assert inner.requests == []


def test_a_slow_guardrail_is_the_model_timeout() -> None:
    from botocore.exceptions import ReadTimeoutError

    # Given a bedrock-runtime client whose ApplyGuardrail does not answer in time
    class Slow:
        def apply_guardrail(self, **kwargs: Any) -> Any:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")

    model = GuardedModel(
        RecordingModel(), GuardrailChecker(GUARDRAIL_ID, GUARDRAIL_VERSION, lambda _t: Slow())
    )

    # When / Then generating raises the model timeout
    with pytest.raises(ModelTimeoutError):
        model.generate(_request())


# --- Converse with guardrailConfig and its trace ---


def _converse_params() -> dict[str, Any]:
    return {
        "modelId": MODEL_ID,
        "system": [{"text": SYSTEM}],
        # Only the user's words are guardContent: the input policies assess nothing else.
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": PASSAGES},
                    {"guardContent": {"text": {"text": QUESTION}}},
                ],
            }
        ],
        "inferenceConfig": {"maxTokens": 800, "temperature": 0.2, "topP": 0.9},
        "guardrailConfig": {
            "guardrailIdentifier": GUARDRAIL_ID,
            "guardrailVersion": GUARDRAIL_VERSION,
            "trace": "enabled",
        },
    }


def _converse_response(text: str, stop: str, trace: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 50, "outputTokens": 8, "totalTokens": 58},
        "metrics": {"latencyMs": 120},
        "trace": {"guardrail": trace},
    }


def _converse_model(client: Any) -> BedrockConverseModel:
    return BedrockConverseModel(
        MODEL_ID,
        client=lambda _timeout: client,
        guardrail_id=GUARDRAIL_ID,
        guardrail_version=GUARDRAIL_VERSION,
    )


def test_converse_asks_for_the_trace_and_reports_a_blocked_prompt(
    bedrock: tuple[Any, Stubber],
) -> None:
    # Given Converse expecting the guardrail with its trace enabled, and blocking the prompt as
    # a prompt attack
    client, stubber = bedrock
    stubber.add_response(
        "converse",
        _converse_response(
            BLOCKED_INPUT,
            "guardrail_intervened",
            {"inputAssessment": {GUARDRAIL_ID: PROMPT_ATTACK}, "actionReason": "blocked"},
        ),
        _converse_params(),
    )

    # When the model generates
    reply = _converse_model(client).generate(_request())

    # Then the request asked for the trace (Stubber compares it), and the reply is the
    # guardrail's message, blocked on the input, for a prompt attack
    assert reply.text == BLOCKED_INPUT
    assert reply.guardrail == Guardrail(action="blocked", source="input", reasons=["PROMPT_ATTACK"])


@pytest.mark.parametrize("stop", ["end_turn", "guardrail_intervened"])
def test_converse_reports_masked_personal_data_in_the_answer(
    bedrock: tuple[Any, Stubber], stop: str
) -> None:
    # Given Converse answering with an e-mail address masked in the output, whichever stop
    # reason it gives for it (the trace also carries the unmasked output)
    client, stubber = bedrock
    stubber.add_response(
        "converse",
        _converse_response(
            "Write to {EMAIL}. [1]",
            stop,
            {
                "modelOutput": ["Write to ana@example.com. [1]"],
                "inputAssessment": {GUARDRAIL_ID: {}},
                "outputAssessments": {GUARDRAIL_ID: [EMAIL_MASKED]},
            },
        ),
        _converse_params(),
    )

    # When the model generates
    reply = _converse_model(client).generate(_request())

    # Then the reply is the masked text, anonymised on the output, for an e-mail address
    assert reply.text == "Write to {EMAIL}. [1]"
    assert reply.guardrail == Guardrail(action="anonymized", source="output", reasons=["EMAIL"])
    assert reply.refused is False


def test_converse_without_an_intervention_reports_none(bedrock: tuple[Any, Stubber]) -> None:
    # Given Converse answering normally, with a trace of assessments where nothing acted
    client, stubber = bedrock
    stubber.add_response(
        "converse",
        _converse_response(
            "We sell tents. [1]",
            "end_turn",
            {
                "inputAssessment": {
                    GUARDRAIL_ID: {
                        "contentPolicy": {
                            "filters": [
                                {
                                    "type": "INSULTS",
                                    "confidence": "LOW",
                                    "action": "NONE",
                                    "detected": False,
                                }
                            ]
                        }
                    }
                },
                "outputAssessments": {GUARDRAIL_ID: [{}]},
            },
        ),
        _converse_params(),
    )

    # When the model generates
    reply = _converse_model(client).generate(_request())

    # Then the reply is the model's answer, without an intervention
    assert (reply.text, reply.guardrail) == ("We sell tents. [1]", None)
