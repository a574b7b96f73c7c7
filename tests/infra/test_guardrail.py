"""The Bedrock guardrail: created by the stack, given by id, or none; what it screens; who may
apply it; and how the model steps are told which one to use."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.cfn_yaml import Evaluator
from infra.iam_policies import Stack
from infra.test_iam import ACCOUNT, MODEL_STEPS, REGION, ROLE_HOLDERS, model_grants
from infra.tools import ENVIRONMENTS

GUARDRAIL = "ChatGuardrail"
VERSION = "ChatGuardrailVersion"
ID_VARIABLE = "CONCIERGE_BEDROCK_GUARDRAIL_ID"
VERSION_VARIABLE = "CONCIERGE_BEDROCK_GUARDRAIL_VERSION"
# A route that calls a model, and the allow-list that goes with it: a guardrail needs both.
CALLS_A_MODEL = {
    "AnswerModel": "sagemaker:concierge-llama-3-1-70b:messages",
    "SageMakerEndpointNames": "concierge-llama-3-1-70b",
}
GIVEN = {"GuardrailId": "gr0abc123xyz", "GuardrailVersion": "3"}
# Every PII entity acts on the answer only, by these actions.
BLOCKED_IN_ANSWERS = {
    "CREDIT_DEBIT_CARD_NUMBER",
    "CREDIT_DEBIT_CARD_CVV",
    "CREDIT_DEBIT_CARD_EXPIRY",
    "US_SOCIAL_SECURITY_NUMBER",
    "PASSWORD",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
}
MASKED_IN_ANSWERS = {"INTERNATIONAL_BANK_ACCOUNT_NUMBER", "EMAIL", "PHONE"}


def stack(template: dict[str, Any], parameters: dict[str, str]) -> Stack:
    return Stack(template, {}, parameters, region=REGION, account=ACCOUNT)


def guardrail_properties(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    properties: dict[str, Any] = stack(template, parameters).resolve(
        template["Resources"][GUARDRAIL]["Properties"]
    )
    return properties


def step_variables(
    template: dict[str, Any], parameters: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """(guardrail id, version) each model step is told to use."""
    built = stack(template, parameters)
    return {
        step: (built.environment(step)[ID_VARIABLE], built.environment(step)[VERSION_VARIABLE])
        for step in MODEL_STEPS
    }


def guardrail_grants(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, set]:
    """The ARNs each role may call ApplyGuardrail on (roles without the action left out)."""
    grants = {holder: model_grants(template, holder, parameters) for holder in ROLE_HOLDERS}
    return {
        holder: actions["bedrock:ApplyGuardrail"]
        for holder, actions in grants.items()
        if "bedrock:ApplyGuardrail" in actions
    }


# -- which guardrail ------------------------------------------------------------------------------


def test_the_stack_creates_and_versions_its_guardrail_when_no_id_is_given(
    template: dict[str, Any],
) -> None:
    # Given a route that calls a model, and no GuardrailId (the default)
    parameters = dict(CALLS_A_MODEL)
    built = stack(template, parameters)

    # When the model steps' variables and the template's outputs are resolved
    variables = step_variables(template, parameters)
    outputs = {
        name: built.resolve(template["Outputs"][name]["Value"])
        for name in ("AppliedGuardrailId", "AppliedGuardrailVersion")
    }

    # Then the guardrail and a published version of it are created, and every model step and
    # the outputs name that version (a number, never the mutable draft)
    evaluator = Evaluator(template, parameters)
    assert evaluator.creates(GUARDRAIL) and evaluator.creates(VERSION)
    guardrail_id, version = (
        built.physical(GUARDRAIL, "GuardrailId"),
        built.physical(VERSION, "Version"),
    )
    assert set(variables.values()) == {(guardrail_id, version)}
    assert re.fullmatch(r"[1-9][0-9]*", version)
    assert outputs == {"AppliedGuardrailId": guardrail_id, "AppliedGuardrailVersion": version}


def test_a_guardrail_version_is_published_again_whenever_the_guardrail_changes(
    template: dict[str, Any],
) -> None:
    # When the version resource's properties are read (a version is immutable; its Description
    # can only be set when it is created, so a new Description replaces it: a new version)
    version = template["Resources"][VERSION]["Properties"]

    # Then it versions the stack's guardrail, and its Description follows the guardrail's updates
    assert version["GuardrailIdentifier"] == {"Fn::GetAtt": [GUARDRAIL, "GuardrailId"]}
    assert "${ChatGuardrail.UpdatedAt}" in version["Description"]["Fn::Sub"]


def test_an_existing_guardrail_is_used_as_given(template: dict[str, Any]) -> None:
    # Given a route that calls a model and the id and version of an existing guardrail
    parameters = {**CALLS_A_MODEL, **GIVEN}

    # When the template is resolved with them
    evaluator = Evaluator(template, parameters)
    variables = step_variables(template, parameters)
    grants = guardrail_grants(template, parameters)

    # Then no guardrail is created, every model step uses the given one, and may apply exactly it
    assert not evaluator.creates(GUARDRAIL) and not evaluator.creates(VERSION)
    assert set(variables.values()) == {("gr0abc123xyz", "3")}
    arn = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/gr0abc123xyz"
    assert grants == {step: {arn} for step in MODEL_STEPS}


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({**CALLS_A_MODEL, "GuardrailId": "none"}, id="GuardrailId=none"),
        pytest.param({}, id="offline-routes"),
        pytest.param(GIVEN, id="offline-routes-with-an-id"),
    ],
)
def test_no_guardrail_when_none_is_asked_for_or_no_route_calls_a_model(
    template: dict[str, Any], parameters: dict[str, str]
) -> None:
    # Given `none`, or routes that are all offline (the template defaults)
    # When the template is resolved with them
    evaluator = Evaluator(template, parameters)
    variables = step_variables(template, parameters)
    grants = guardrail_grants(template, parameters)
    outputs = [
        name
        for name, output in template["Outputs"].items()
        if "Condition" not in output or evaluator.condition(output["Condition"])
    ]

    # Then there is no guardrail at all: none created, none named to the steps (""), none
    # granted, none in the outputs
    assert not evaluator.creates(GUARDRAIL)
    assert set(variables.values()) == {("", "")}
    assert grants == {}
    assert "AppliedGuardrailId" not in outputs


# -- who may apply it --------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_model_steps_may_apply_the_guardrail_they_are_told_to_use(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given an environment as deployed
    parameters = env_parameters[env]

    # When the roles' ApplyGuardrail grants and the steps' guardrail variables are resolved
    built = stack(template, parameters)
    grants = {
        holder: {built.named(arn) for arn in arns}
        for holder, arns in guardrail_grants(template, parameters).items()
    }
    variables = step_variables(template, parameters)

    # Then classify, condense and answer - and no other role - may apply exactly the guardrail
    # ARN their variables name (SageMaker and OpenAI-compatible routes call ApplyGuardrail; a
    # Converse call with guardrailConfig is authorised against it too)
    assert set(grants) == set(MODEL_STEPS), env
    for step in MODEL_STEPS:
        guardrail_id, _ = variables[step]
        assert guardrail_id, f"{env}: {step} is told no guardrail"
        assert grants[step] == {f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/{guardrail_id}"}


# -- what it screens -----------------------------------------------------------------------------


def test_prompt_attacks_are_screened_on_the_question_and_harmful_content_both_ways(
    template: dict[str, Any],
) -> None:
    # Given the stack's guardrail
    filters = {
        f["Type"]: f
        for f in guardrail_properties(template, CALLS_A_MODEL)["ContentPolicyConfig"][
            "FiltersConfig"
        ]
    }

    # When / Then prompt attacks are blocked on input at the highest strength, and not on
    # output (Bedrock requires NONE there)
    attack = filters.pop("PROMPT_ATTACK")
    assert (attack["InputStrength"], attack["InputEnabled"], attack["InputAction"]) == (
        "HIGH",
        True,
        "BLOCK",
    )
    assert attack["OutputStrength"] == "NONE"
    # And every category of harmful content is blocked in questions and answers, answers at HIGH
    assert set(filters) == {"SEXUAL", "VIOLENCE", "HATE", "INSULTS", "MISCONDUCT"}
    for kind, content_filter in filters.items():
        assert content_filter["InputStrength"] in {"MEDIUM", "HIGH"}, kind
        assert content_filter["OutputStrength"] == "HIGH", kind
        assert content_filter["InputAction"] == content_filter["OutputAction"] == "BLOCK", kind


@pytest.mark.parametrize("mask_contacts", ["true", "false"])
def test_personal_data_is_blocked_or_masked_in_answers_and_left_alone_in_questions(
    template: dict[str, Any], mask_contacts: str
) -> None:
    # Given the stack's guardrail, with contacts masked or not
    parameters = {**CALLS_A_MODEL, "GuardrailMaskContacts": mask_contacts}
    policy = guardrail_properties(template, parameters)["SensitiveInformationPolicyConfig"]

    # When its PII entities are read
    entities = {entity["Type"]: entity for entity in policy["PiiEntitiesConfig"]}

    # Then each acts on the answer only (a question may carry the asker's own details)
    for kind, entity in entities.items():
        assert (entity["InputEnabled"], entity["InputAction"]) == (False, "NONE"), kind
        assert entity["OutputEnabled"] is True, kind
        assert entity["Action"] == entity["OutputAction"], kind
    # And what never belongs in an answer blocks it, the rest is masked
    actions = {kind: entity["OutputAction"] for kind, entity in entities.items()}
    masked = (
        MASKED_IN_ANSWERS if mask_contacts == "true" else MASKED_IN_ANSWERS - {"EMAIL", "PHONE"}
    )
    assert actions == {
        **dict.fromkeys(BLOCKED_IN_ANSWERS, "BLOCK"),
        **dict.fromkeys(masked, "ANONYMIZE"),
    }


def test_denied_topics_and_blocked_words_come_from_the_parameters_slot_by_slot(
    template: dict[str, Any],
) -> None:
    # Given as many denied topics and blocked words as the template has slots for
    topic_slots = len([c for c in template["Conditions"] if re.fullmatch(r"HasDeniedTopic\d+", c)])
    word_slots = len([c for c in template["Conditions"] if re.fullmatch(r"HasBlockedWord\d+", c)])
    topics = [(f"Topic {n}", f"What topic {n} covers, in words.") for n in range(topic_slots)]
    words = [f"word{n}" for n in range(word_slots)]
    parameters = {
        **CALLS_A_MODEL,
        "GuardrailDeniedTopics": "|".join(f"{name}={definition}" for name, definition in topics),
        "GuardrailBlockedWords": ",".join(words),
    }

    # When the guardrail is resolved with them
    properties = guardrail_properties(template, parameters)

    # Then each topic is denied by name and definition and each word blocked, both ways, and
    # the managed profanity list is on
    configured = properties["TopicPolicyConfig"]["TopicsConfig"]
    assert [(t["Name"], t["Definition"]) for t in configured] == topics
    assert all(
        t["Type"] == "DENY" and t["InputAction"] == t["OutputAction"] == "BLOCK" for t in configured
    )
    word_policy = properties["WordPolicyConfig"]
    assert [w["Text"] for w in word_policy["WordsConfig"]] == words
    assert all(w["InputAction"] == w["OutputAction"] == "BLOCK" for w in word_policy["WordsConfig"])
    assert [m["Type"] for m in word_policy["ManagedWordListsConfig"]] == ["PROFANITY"]
    # And the topics parameter accepts no more topics than there are slots
    pattern = template["Parameters"]["GuardrailDeniedTopics"]["AllowedPattern"]
    assert re.fullmatch(pattern, parameters["GuardrailDeniedTopics"])
    assert not re.fullmatch(pattern, parameters["GuardrailDeniedTopics"] + "|One more=Too many.")


def test_without_topics_or_words_only_the_profanity_list_remains(template: dict[str, Any]) -> None:
    # Given no denied topics and no blocked words (the defaults)
    # When the guardrail is resolved
    properties = guardrail_properties(template, CALLS_A_MODEL)

    # Then it has no topic policy and no custom words (each needs at least one item), and the
    # users' blocked messages are the parameters'
    assert "TopicPolicyConfig" not in properties
    assert "WordsConfig" not in properties["WordPolicyConfig"]
    assert properties["WordPolicyConfig"]["ManagedWordListsConfig"][0]["Type"] == "PROFANITY"
    defaults = template["Parameters"]
    assert (
        properties["BlockedInputMessaging"] == defaults["GuardrailBlockedInputMessage"]["Default"]
    )
    assert (
        properties["BlockedOutputsMessaging"]
        == defaults["GuardrailBlockedOutputMessage"]["Default"]
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_guards_its_models_with_the_stacks_guardrail(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given an environment as deployed
    parameters = env_parameters[env]

    # When its guardrail is resolved
    evaluator = Evaluator(template, parameters)
    properties = guardrail_properties(template, parameters)

    # Then the stack creates one, with the denied topics the environment names
    assert evaluator.creates(GUARDRAIL), env
    names = [t["Name"] for t in properties.get("TopicPolicyConfig", {}).get("TopicsConfig", [])]
    expected = [
        item.split("=", 1)[0] for item in parameters["GuardrailDeniedTopics"].split("|") if item
    ]
    assert names == expected, env
