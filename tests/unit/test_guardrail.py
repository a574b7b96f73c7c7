"""Guardrail interventions: assessments read into verdicts and reasons, Converse responses read
into a reply's `guardrail`, and the ApplyGuardrail wrapper around a model (a fake model and a
fake bedrock-runtime client: no network)."""

from __future__ import annotations

from typing import Any

import pytest

from concierge.adapters.llm.guardrail import (
    FALLBACK_BLOCKED_MESSAGE,
    GuardedModel,
    GuardrailChecker,
    Verdict,
    converse_guardrail,
    verdict,
)
from concierge.adapters.llm.port import ModelReply, ModelRequest
from concierge.adapters.llm.registry import model_for
from concierge.config import ModelRuntimeSettings, load
from concierge.errors import ConfigurationError, ModelInvocationError, ModelTimeoutError
from concierge.models.http import Guardrail

PROMPT = "Question: what do you sell?"


def _entry(action: str, **fields: Any) -> dict[str, Any]:
    return {"action": action, "detected": True, **fields}


# --- assessments → verdicts ---


@pytest.mark.parametrize(
    ("assessment", "reason"),
    [
        (
            {"contentPolicy": {"filters": [_entry("BLOCKED", type="PROMPT_ATTACK")]}},
            "PROMPT_ATTACK",
        ),
        ({"contentPolicy": {"filters": [_entry("BLOCKED", type="HATE")]}}, "HATE"),
        (
            {"topicPolicy": {"topics": [_entry("BLOCKED", name="Legal", type="DENY")]}},
            "topic:Legal",
        ),
        ({"wordPolicy": {"customWords": [_entry("BLOCKED", match="acme")]}}, "word"),
        (
            {"wordPolicy": {"managedWordLists": [_entry("BLOCKED", match="x", type="PROFANITY")]}},
            "profanity",
        ),
        (
            {"sensitiveInformationPolicy": {"piiEntities": [_entry("BLOCKED", type="PHONE")]}},
            "PHONE",
        ),
        (
            {"sensitiveInformationPolicy": {"regexes": [_entry("BLOCKED", name="staff_id")]}},
            "regex:staff_id",
        ),
        ({"sensitiveInformationPolicy": {"regexes": [_entry("BLOCKED")]}}, "regex"),
        (
            {"contextualGroundingPolicy": {"filters": [_entry("BLOCKED", type="GROUNDING")]}},
            "GROUNDING",
        ),
    ],
)
def test_each_policy_names_what_intervened(assessment: dict[str, Any], reason: str) -> None:
    # Given an assessment in which one policy blocked
    # When it is read
    found = verdict([assessment])

    # Then the verdict is a block named by the policy's short name, never by the matched text
    assert found == Verdict("blocked", (reason,))


def test_detections_without_an_action_are_not_interventions() -> None:
    # Given assessments that only detected (action NONE) and an automated-reasoning finding,
    # which carries no action
    assessments = [
        {"contentPolicy": {"filters": [_entry("NONE", type="INSULTS")]}},
        {"sensitiveInformationPolicy": {"piiEntities": [_entry("NONE", type="EMAIL")]}},
        {"automatedReasoningPolicy": {"findings": [{"tooComplex": {}}]}},
        {},
    ]

    # When they are read
    found = verdict(assessments)

    # Then nothing intervened
    assert found is None


def test_a_block_is_explained_by_what_blocked() -> None:
    # Given one assessment that masked an e-mail address and blocked a denied topic
    assessment = {
        "sensitiveInformationPolicy": {"piiEntities": [_entry("ANONYMIZED", type="EMAIL")]},
        "topicPolicy": {"topics": [_entry("BLOCKED", name="Investment", type="DENY")]},
    }

    # When it is read
    found = verdict([assessment])

    # Then it is a block, whose reasons are what blocked (the mask did not decide anything)
    assert found == Verdict("blocked", ("topic:Investment",))


def test_masking_alone_is_anonymization_with_deduplicated_reasons_in_order() -> None:
    # Given two assessments masking personal data, some of it twice
    assessments = [
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [
                    _entry("ANONYMIZED", type="NAME"),
                    _entry("ANONYMIZED", type="EMAIL"),
                    _entry("ANONYMIZED", type="NAME"),
                ],
                "regexes": [_entry("ANONYMIZED", name="staff_id")],
            }
        },
        {"sensitiveInformationPolicy": {"piiEntities": [_entry("ANONYMIZED", type="EMAIL")]}},
    ]

    # When they are read
    found = verdict(assessments)

    # Then the verdict is anonymization, each reason once, in the order the guardrail reported
    assert found == Verdict("anonymized", ("NAME", "EMAIL", "regex:staff_id"))


# --- Converse responses → the reply's guardrail ---


def _converse(stop: str, trace: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"stopReason": stop}
    if trace is not None:
        response["trace"] = {"guardrail": trace}
    return response


BLOCKED_ATTACK = {"contentPolicy": {"filters": [_entry("BLOCKED", type="PROMPT_ATTACK")]}}
MASKED_EMAIL = {"sensitiveInformationPolicy": {"piiEntities": [_entry("ANONYMIZED", type="EMAIL")]}}
BLOCKED_TOPIC = {"topicPolicy": {"topics": [_entry("BLOCKED", name="Legal", type="DENY")]}}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(_converse("end_turn"), None, id="no-guardrail"),
        pytest.param(
            _converse("guardrail_intervened", {"inputAssessment": {"g": BLOCKED_ATTACK}}),
            Guardrail(action="blocked", source="input", reasons=["PROMPT_ATTACK"]),
            id="blocked-input",
        ),
        pytest.param(
            _converse(
                "guardrail_intervened",
                {
                    "inputAssessment": {"g": MASKED_EMAIL},
                    "outputAssessments": {"g": [BLOCKED_TOPIC]},
                },
            ),
            Guardrail(action="blocked", source="output", reasons=["topic:Legal"]),
            id="masked-input-blocked-output",
        ),
        pytest.param(
            _converse("end_turn", {"outputAssessments": {"g": [MASKED_EMAIL]}}),
            Guardrail(action="anonymized", source="output", reasons=["EMAIL"]),
            id="masked-output",
        ),
        pytest.param(
            _converse("end_turn", {"inputAssessment": {"g": MASKED_EMAIL}}),
            Guardrail(action="anonymized", source="input", reasons=["EMAIL"]),
            id="masked-input-only",
        ),
        pytest.param(
            _converse("guardrail_intervened"),
            Guardrail(action="blocked", source="output", reasons=[]),
            id="intervened-without-trace",
        ),
        pytest.param(
            _converse("guardrail_intervened", {"outputAssessments": {"g": [{}]}}),
            Guardrail(action="blocked", source="output", reasons=[]),
            id="intervened-unexplained-by-trace",
        ),
    ],
)
def test_converse_responses_report_their_intervention(
    response: dict[str, Any], expected: Guardrail | None
) -> None:
    # Given a Converse response's stop reason and guardrail trace
    # When the intervention is read from it
    found = converse_guardrail(response)

    # Then it says what the reply's text is: the guardrail's message for a block (of the input
    # if the prompt was blocked; of the output when nothing explains the stop), the model's
    # text with masks for anonymization
    assert found == expected


# --- the ApplyGuardrail wrapper ---


class FakeRuntime:
    """A bedrock-runtime client answering ApplyGuardrail from a queue, keeping each call."""

    def __init__(self, *responses: dict[str, Any]) -> None:
        self.responses = list(responses)
        self.calls: list[dict[str, Any]] = []

    def apply_guardrail(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return self.responses.pop(0)


class FakeModel:
    spec = "sagemaker:endpoint:messages"

    def __init__(self, text: str = "We sell tents. [1]") -> None:
        self.text = text
        self.requests: list[ModelRequest] = []

    def generate(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return ModelReply(text=self.text, model=self.spec, input_tokens=40, output_tokens=9)


PASSED: dict[str, Any] = {"action": "NONE", "outputs": [], "assessments": []}


def _intervened(assessment: dict[str, Any], *texts: str) -> dict[str, Any]:
    return {
        "action": "GUARDRAIL_INTERVENED",
        "outputs": [{"text": text} for text in texts],
        "assessments": [assessment],
    }


def _request(timeout_s: float = 20) -> ModelRequest:
    return ModelRequest(
        task="answer",
        system="Answer from the passages.",
        prompt=PROMPT,
        max_tokens=800,
        temperature=0.2,
        top_p=0.9,
        timeout_s=timeout_s,
    )


def _guarded(
    runtime: FakeRuntime, inner: FakeModel, timeouts: list[float] | None = None, **kw: Any
) -> GuardedModel:
    def client(timeout: float) -> FakeRuntime:
        if timeouts is not None:
            timeouts.append(timeout)
        return runtime

    return GuardedModel(inner, GuardrailChecker("gr0abc", "3", client), **kw)


def test_a_clean_exchange_passes_through() -> None:
    # Given a guardrail that passes both the prompt and the answer
    runtime = FakeRuntime(PASSED, PASSED)
    inner = FakeModel()

    # When the guarded model generates
    reply = _guarded(runtime, inner).generate(_request())

    # Then the prompt (not the system prompt) and then the answer were checked, the model got
    # the prompt as it was, and the reply is the model's
    assert [(call["source"], call["content"]) for call in runtime.calls] == [
        ("INPUT", [{"text": {"text": PROMPT}}]),
        ("OUTPUT", [{"text": {"text": "We sell tents. [1]"}}]),
    ]
    assert [request.prompt for request in inner.requests] == [PROMPT]
    assert reply == ModelReply(
        text="We sell tents. [1]", model=inner.spec, input_tokens=40, output_tokens=9
    )


def test_masked_input_reaches_the_model_masked_and_is_reported() -> None:
    # Given a guardrail that anonymises personal data in the prompt, and passes the answer
    masked = "Question: do you write to {EMAIL}?"
    runtime = FakeRuntime(_intervened(MASKED_EMAIL, masked), PASSED)
    inner = FakeModel()

    # When the guarded model generates
    reply = _guarded(runtime, inner).generate(_request())

    # Then the model read the masked prompt, and the reply reports the masking of the input
    assert [request.prompt for request in inner.requests] == [masked]
    assert reply.text == "We sell tents. [1]"
    assert reply.guardrail == Guardrail(action="anonymized", source="input", reasons=["EMAIL"])


def test_only_the_users_words_are_assessed_and_masked() -> None:
    # Given a prompt of passages and a question, the question marked as the user's, and a
    # guardrail that masks the e-mail address in what it assesses
    question = "Do you write to ana@example.com?"
    passages = "Passages: [1] Write to support@alpenglow.example for repairs.\n\nQuestion: "
    request = _request().model_copy(update={"prompt": passages + question, "guarded": question})
    runtime = FakeRuntime(_intervened(MASKED_EMAIL, "Do you write to {EMAIL}?"), PASSED)
    inner = FakeModel()

    # When the guarded model generates
    _guarded(runtime, inner).generate(request)

    # Then the guardrail assessed the question alone (not the documents' own address), and the
    # model read the passages as they are with the question masked
    assert runtime.calls[0]["content"] == [{"text": {"text": question}}]
    assert [r.prompt for r in inner.requests] == [passages + "Do you write to {EMAIL}?"]


def test_a_blocked_answer_keeps_the_spent_tokens() -> None:
    # Given a guardrail that passes the prompt and blocks the answer
    runtime = FakeRuntime(PASSED, _intervened(BLOCKED_TOPIC, "Not here."))
    inner = FakeModel()

    # When the guarded model generates
    reply = _guarded(runtime, inner).generate(_request())

    # Then the text is the guardrail's, the tokens are the model's, the reply is a refusal
    assert (reply.text, reply.input_tokens, reply.output_tokens) == ("Not here.", 40, 9)
    assert reply.refused is True
    assert reply.guardrail == Guardrail(action="blocked", source="output", reasons=["topic:Legal"])


def test_a_block_without_a_message_gets_the_fallback_message() -> None:
    # Given a guardrail that blocks the prompt but returns no text
    runtime = FakeRuntime(_intervened(BLOCKED_ATTACK))
    inner = FakeModel()

    # When the guarded model generates
    reply = _guarded(runtime, inner).generate(_request())

    # Then the model is not called and the reply is the fallback refusal, never empty
    assert inner.requests == []
    assert reply.text == FALLBACK_BLOCKED_MESSAGE
    assert reply.refused is True


def test_an_unexplained_intervention_is_a_block() -> None:
    # Given a guardrail that says it intervened on the answer, with no acting policy
    runtime = FakeRuntime(
        PASSED, {"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "No."}], "assessments": []}
    )

    # When the guarded model generates
    reply = _guarded(runtime, FakeModel()).generate(_request())

    # Then the answer is blocked, with no reasons to give
    assert reply.text == "No."
    assert reply.guardrail == Guardrail(action="blocked", source="output", reasons=[])


def test_masking_without_the_masked_text_fails_rather_than_leak() -> None:
    # Given a guardrail that anonymises the answer but returns no masked text
    runtime = FakeRuntime(PASSED, _intervened(MASKED_EMAIL))

    # When / Then generating fails as a rejected model call: the unmasked answer is not shown
    with pytest.raises(ModelInvocationError):
        _guarded(runtime, FakeModel()).generate(_request())


def test_an_empty_answer_is_not_checked() -> None:
    # Given a model that answers nothing
    runtime = FakeRuntime(PASSED)

    # When the guarded model generates
    reply = _guarded(runtime, FakeModel("")).generate(_request())

    # Then only the prompt was checked
    assert [call["source"] for call in runtime.calls] == ["INPUT"]
    assert (reply.text, reply.guardrail) == ("", None)


def test_the_model_and_the_checks_share_the_time_left() -> None:
    # Given a clock on which each guardrail call and the model take 3 s
    now = [100.0]

    class SlowRuntime(FakeRuntime):
        def apply_guardrail(self, **params: Any) -> dict[str, Any]:
            now[0] += 3
            return super().apply_guardrail(**params)

    class SlowModel(FakeModel):
        def generate(self, request: ModelRequest) -> ModelReply:
            now[0] += 3
            return super().generate(request)

    timeouts: list[float] = []
    inner = SlowModel()
    model = _guarded(SlowRuntime(PASSED, PASSED), inner, timeouts, clock=lambda: now[0])

    # When it generates with 20.5 s left
    model.generate(_request(timeout_s=20.5))

    # Then each call was given what the earlier ones left (clients in whole seconds)
    assert [request.timeout_s for request in inner.requests] == [17.5]
    assert timeouts == [20.0, 14.0]


def test_no_time_left_after_the_input_check_is_a_timeout() -> None:
    # Given a guardrail check that uses up the whole budget
    now = [0.0]

    class SlowRuntime(FakeRuntime):
        def apply_guardrail(self, **params: Any) -> dict[str, Any]:
            now[0] += 5
            return super().apply_guardrail(**params)

    inner = FakeModel()
    model = _guarded(SlowRuntime(PASSED), inner, clock=lambda: now[0])

    # When / Then generating with 4 s left is a model timeout, and the model is not called
    with pytest.raises(ModelTimeoutError):
        model.generate(_request(timeout_s=4))
    assert inner.requests == []


# --- the registry and the settings ---


def _no_client(service: str, read_timeout: float | None = None) -> Any:
    raise AssertionError("building a model must not create a client")


@pytest.mark.parametrize(
    ("spec", "guarded"),
    [
        ("sagemaker:endpoint:messages", True),
        ("sagemaker:endpoint:inputs", True),
        ("openai:llama3.2:3b", True),
        ("bedrock:eu.anthropic.claude-3-5-sonnet-20240620-v1:0", False),
        ("offline", False),
    ],
)
def test_with_a_guardrail_the_registry_wraps_what_bedrock_does_not_serve(
    spec: str, guarded: bool
) -> None:
    # Given a configured guardrail
    runtime = ModelRuntimeSettings(bedrock_guardrail_id="gr0abc", bedrock_guardrail_version="3")

    # When the registry builds a model
    model = model_for(spec, runtime, _no_client)

    # Then SageMaker and OpenAI-compatible models go through ApplyGuardrail, Bedrock models keep
    # Converse's own guardrail, the offline model none, and each keeps its spec
    assert isinstance(model, GuardedModel) is guarded
    assert model.spec == spec


def test_without_a_guardrail_nothing_is_wrapped() -> None:
    # Given no guardrail configured
    runtime = ModelRuntimeSettings()

    # When the registry builds a SageMaker model
    model = model_for("sagemaker:endpoint:messages", runtime, _no_client)

    # Then it is the bare adapter
    assert not isinstance(model, GuardedModel)


@pytest.mark.parametrize(
    ("variable", "value", "valid"),
    [
        ("CONCIERGE_BEDROCK_GUARDRAIL_ID", "gr0abc123xyz", True),
        (
            "CONCIERGE_BEDROCK_GUARDRAIL_ID",
            "arn:aws:bedrock:eu-west-1:123456789012:guardrail/gr0abc123xyz",
            True,
        ),
        ("CONCIERGE_BEDROCK_GUARDRAIL_ID", "My-Guardrail", False),
        ("CONCIERGE_BEDROCK_GUARDRAIL_VERSION", "DRAFT", True),
        ("CONCIERGE_BEDROCK_GUARDRAIL_VERSION", "12", True),
        ("CONCIERGE_BEDROCK_GUARDRAIL_VERSION", "v1", False),
        ("CONCIERGE_BEDROCK_GUARDRAIL_VERSION", "0", False),
    ],
)
def test_guardrail_settings_take_the_forms_bedrock_accepts(
    variable: str, value: str, valid: bool
) -> None:
    # Given a guardrail id or version
    environ = {variable: value}

    # When / Then the settings load only if Bedrock would accept it, and otherwise name the
    # variable at start rather than failing every call
    if valid:
        load(ModelRuntimeSettings, environ)
    else:
        with pytest.raises(ConfigurationError, match=variable):
            load(ModelRuntimeSettings, environ)
