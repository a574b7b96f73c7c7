"""Least privilege: what each role may do, resolved for the parameter values each env deploys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.cfn_yaml import Evaluator

pytestmark = pytest.mark.infra

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE_HOLDERS = (
    "ApiFunction",
    "ClassifyFunction",
    "CondenseFunction",
    "RetrieveFunction",
    "AnswerFunction",
    "ChatStateMachine",
)
MODEL_PARAMETERS = {
    "ClassifyFunction": "ClassifyModel",
    "CondenseFunction": "CondenseModel",
    "AnswerFunction": "AnswerModel",
}
# Actions that have no resource-level permissions at all: "*" is the only possible Resource.
STAR_ONLY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement inside a resolved policy structure."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
            return
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def policy_templates(policies: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """SAM policy templates (`S3ReadPolicy: {BucketName: …}`) among a resolved Policies list."""
    for policy in policies:
        if isinstance(policy, dict) and len(policy) == 1 and "Statement" not in policy:
            ((name, arguments),) = policy.items()
            yield name, arguments


def resolved_policies(
    template: dict[str, Any], holder: str, parameters: dict[str, str]
) -> list[Any]:
    evaluator = Evaluator(template, parameters, region=REGION, account_id=ACCOUNT, strict=True)
    return as_list(
        evaluator.resolve(template["Resources"][holder]["Properties"].get("Policies", []))
    )


def deployed_parameter_sets(samconfig: dict[str, Any]) -> list[dict[str, str]]:
    """The template defaults plus the overrides of every samconfig environment."""
    sets: list[dict[str, str]] = [{}]
    for env in ("dev", "staging", "prod"):
        overrides = samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
        sets.append(dict(item.split("=", 1) for item in as_list(overrides)))
    return sets


def test_no_bedrock_or_dynamodb_action_is_granted_on_every_resource(
    template: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    for parameters in deployed_parameter_sets(samconfig):
        for holder in ROLE_HOLDERS:
            policies = resolved_policies(template, holder, parameters)
            for statement in statements(policies):
                actions = as_list(statement.get("Action", []))
                broad = "*" in as_list(statement["Resource"])
                risky = [
                    a for a in actions if a.split(":")[0] in {"bedrock", "dynamodb"} or a == "*"
                ]
                assert not (broad and risky), f"{holder} grants {risky} on '*' ({parameters})"
                if broad:
                    assert set(actions) <= STAR_ONLY_ACTIONS, f"{holder} grants {actions} on '*'"
            for name, arguments in policy_templates(policies):
                assert "*" not in arguments.values(), f"{holder}: {name} is not scoped: {arguments}"


def test_raw_template_has_no_wildcard_bedrock_or_dynamodb_resource(
    template: dict[str, Any],
) -> None:
    # Independent of any parameter values: no literal "*" next to a bedrock:/dynamodb: action.
    for holder, body in template["Resources"].items():
        for statement in statements(body.get("Properties", {})):
            actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
            if any(a.startswith(("bedrock:", "dynamodb:")) for a in actions):
                assert statement["Resource"] != "*", holder
                assert "*" not in as_list(statement["Resource"]), holder


def bedrock_resources(
    template: dict[str, Any], holder: str, parameters: dict[str, str]
) -> list[str] | None:
    granted = [
        statement
        for statement in statements(resolved_policies(template, holder, parameters))
        if any(action.startswith("bedrock:") for action in as_list(statement["Action"]))
    ]
    if not granted:
        return None
    assert len(granted) == 1
    assert as_list(granted[0]["Action"]) == ["bedrock:InvokeModel"]
    return sorted(as_list(granted[0]["Resource"]))


@pytest.mark.parametrize("holder", sorted(MODEL_PARAMETERS))
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("offline", None, id="offline-no-bedrock"),
        pytest.param(
            "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
            [f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"],
            id="foundation-model",
        ),
        pytest.param(
            "bedrock:eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
            [
                "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
                f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
            ],
            id="eu-inference-profile",
        ),
        pytest.param(
            "bedrock:us.meta.llama3-1-70b-instruct-v1:0",
            [
                "arn:aws:bedrock:*::foundation-model/meta.llama3-1-70b-instruct-v1:0",
                f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/us.meta.llama3-1-70b-instruct-v1:0",
            ],
            id="us-inference-profile",
        ),
    ],
)
def test_bedrock_is_granted_only_for_the_configured_model(
    template: dict[str, Any], holder: str, spec: str, expected: list[str] | None
) -> None:
    # Given only this function's model set to `spec`, the others offline
    parameters = {name: "offline" for name in MODEL_PARAMETERS.values()}
    parameters[MODEL_PARAMETERS[holder]] = spec

    # Then the function may invoke exactly that model, and no other role may invoke any
    assert bedrock_resources(template, holder, parameters) == expected
    for other in ROLE_HOLDERS:
        if other != holder:
            assert bedrock_resources(template, other, parameters) is None, other


def test_api_function_may_only_start_the_chat_state_machine(template: dict[str, Any]) -> None:
    policies = resolved_policies(template, "ApiFunction", {})

    assert [(s["Action"], s["Resource"]) for s in statements(policies)] == [
        ("states:StartSyncExecution", "<ChatStateMachine>")
    ]
    assert list(policy_templates(policies)) == []


def test_retrieve_function_only_reads_the_knowledge_bucket(template: dict[str, Any]) -> None:
    policies = resolved_policies(template, "RetrieveFunction", {})

    assert list(policy_templates(policies)) == [
        ("S3ReadPolicy", {"BucketName": "<KnowledgeBucket>"})
    ]
    assert list(statements(policies)) == []


def test_state_machine_touches_only_its_functions_and_tables(template: dict[str, Any]) -> None:
    policies = resolved_policies(template, "ChatStateMachine", {})

    invoked = {
        arguments["FunctionName"]
        for name, arguments in policy_templates(policies)
        if name == "LambdaInvokePolicy"
    }
    assert invoked == {
        "<ClassifyFunction>",
        "<CondenseFunction>",
        "<RetrieveFunction>",
        "<AnswerFunction>",
    }
    table_access = {
        (action, statement["Resource"])
        for statement in statements(policies)
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
    }
    assert table_access == {
        ("dynamodb:GetItem", "<CacheTable.Arn>"),
        ("dynamodb:PutItem", "<CacheTable.Arn>"),
        ("dynamodb:Query", "<HistoryTable.Arn>"),
        ("dynamodb:PutItem", "<HistoryTable.Arn>"),
    }


def test_customer_key_use_is_granted_only_when_a_key_is_configured(
    template: dict[str, Any],
) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    for holder in ("RetrieveFunction", "ChatStateMachine"):
        without = [
            s
            for s in statements(resolved_policies(template, holder, {}))
            if "kms:" in str(s["Action"])
        ]
        with_key = [
            s
            for s in statements(resolved_policies(template, holder, {"KmsKeyArn": key}))
            if "kms:" in str(s["Action"])
        ]
        assert without == [], holder
        assert [s["Resource"] for s in with_key] == [key], holder
