"""Least privilege: what each role may do, resolved for the parameter values each env deploys.

Which actions the api, semantic and retrieve functions, the state machine and the operator's
CLI need is decided by their code paths, not pinned here: tests/infra/test_iam_paths.py runs
them and holds each role to exactly what they call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra import routes
from infra.cfn_yaml import Evaluator
from infra.tools import ENVIRONMENTS

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
MODEL_STEPS = ("ClassifyFunction", "CondenseFunction", "AnswerFunction")
MODEL_ACTIONS = ("bedrock:", "sagemaker:")
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
    """The holder's Policies for these parameters; the stack's managed policies inlined.

    A managed policy of this template appears as its PolicyDocument, so tests see the
    statements the role really gets. The evaluator fails if a Ref points to a managed policy
    the conditions do not create, as the deploy would.
    """
    evaluator = Evaluator(template, parameters, region=REGION, account_id=ACCOUNT, strict=True)
    resolved = as_list(
        evaluator.resolve(template["Resources"][holder]["Properties"].get("Policies", []))
    )
    policies = []
    for policy in resolved:
        logical_id = policy[1:-1] if isinstance(policy, str) and policy.startswith("<") else None
        resource = template["Resources"].get(logical_id or "", {})
        if resource.get("Type") == "AWS::IAM::ManagedPolicy":
            policies.append(evaluator.resolve(resource["Properties"]["PolicyDocument"]))
        else:
            policies.append(policy)
    return policies


def deployed_parameter_sets(env_parameters: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """The template defaults plus the overrides of every samconfig environment."""
    return [{}, *(env_parameters[env] for env in ENVIRONMENTS)]


def test_no_model_or_dynamodb_action_is_granted_on_every_resource(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]]
) -> None:
    # Given the parameter values of the template defaults and of every environment
    for parameters in deployed_parameter_sets(env_parameters):
        for holder in ROLE_HOLDERS:
            # When the role's policies are resolved with them
            policies = resolved_policies(template, holder, parameters)

            # Then no model or table action is granted on "*", and "*" carries only the
            # actions that cannot be scoped to a resource
            for statement in statements(policies):
                actions = as_list(statement.get("Action", []))
                broad = "*" in as_list(statement["Resource"])
                risky = [
                    a
                    for a in actions
                    if a.split(":")[0] in {"bedrock", "sagemaker", "dynamodb"} or a == "*"
                ]
                assert not (broad and risky), f"{holder} grants {risky} on '*' ({parameters})"
                if broad:
                    assert set(actions) <= STAR_ONLY_ACTIONS, f"{holder} grants {actions} on '*'"
            # And every SAM policy template is scoped to a resource
            for name, arguments in policy_templates(policies):
                assert "*" not in arguments.values(), f"{holder}: {name} is not scoped: {arguments}"


def test_raw_template_has_no_wildcard_model_or_dynamodb_resource(
    template: dict[str, Any],
) -> None:
    # Given the template as written, independent of any parameter values
    resources = template["Resources"]

    # When the statements that grant a model or table action are picked out
    guarded = [
        (holder, statement)
        for holder, body in resources.items()
        for statement in statements(body.get("Properties", {}))
        if any(
            a.startswith((*MODEL_ACTIONS, "dynamodb:"))
            for a in as_list(statement.get("Action", []))
            if isinstance(a, str)
        )
    ]

    # Then there are some, and none has a literal "*" as its resource
    assert guarded
    for holder, statement in guarded:
        assert statement["Resource"] != "*", holder
        assert "*" not in as_list(statement["Resource"]), holder


def model_grants(
    template: dict[str, Any], holder: str, parameters: dict[str, str]
) -> dict[str, set[str]]:
    """Resource ARNs per Bedrock / SageMaker action the holder's role is granted."""
    grants: dict[str, set[str]] = {}
    for statement in statements(resolved_policies(template, holder, parameters)):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            if action.startswith(MODEL_ACTIONS):
                grants.setdefault(action, set()).update(as_list(statement["Resource"]))
    return grants


def test_step_roles_get_exactly_the_arns_of_a_sample_allow_list(template: dict[str, Any]) -> None:
    # Given allow-lists with a model, an inference profile (and its base model), an endpoint
    # and a guardrail
    parameters = {
        "AnswerModel": "sagemaker:concierge-llama-3-1-70b:messages",
        "AnswerFallbacks": "bedrock:eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "ClassifyModel": "bedrock:amazon.nova-micro-v1:0",
        "BedrockModelIds": "amazon.nova-micro-v1:0,anthropic.claude-3-5-sonnet-20240620-v1:0",
        "BedrockInferenceProfileIds": "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "SageMakerEndpointNames": "concierge-llama-3-1-70b",
        "GuardrailId": "gr0abc123xyz",
        "GuardrailVersion": "3",
    }

    # When every role's model grants are resolved with them
    grants = {holder: model_grants(template, holder, parameters) for holder in ROLE_HOLDERS}

    # Then each step role may invoke exactly these ARNs - the same union on all three
    expected = {
        "bedrock:InvokeModel": {
            "arn:aws:bedrock:*::foundation-model/amazon.nova-micro-v1:0",
            "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/"
            "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
        },
        "sagemaker:InvokeEndpoint": {
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/concierge-llama-3-1-70b"
        },
        "bedrock:ApplyGuardrail": {f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/gr0abc123xyz"},
    }
    for holder in MODEL_STEPS:
        assert grants[holder] == expected, holder
    # And no other role may call a model
    for holder in set(ROLE_HOLDERS) - set(MODEL_STEPS):
        assert grants[holder] == {}, holder


def test_offline_only_configuration_grants_no_model_access(template: dict[str, Any]) -> None:
    # Given every route offline and empty allow-lists (the template defaults), even with a
    # guardrail configured
    parameters = {"GuardrailId": "gr0abc123xyz"}
    evaluator = Evaluator(template, parameters)

    # When the template is resolved with them
    creates_model_policy = evaluator.creates("ModelAccessPolicy")
    grants = {holder: model_grants(template, holder, parameters) for holder in ROLE_HOLDERS}

    # Then there is no model policy at all and no role has a Bedrock or SageMaker statement
    assert not creates_model_policy
    for holder in ROLE_HOLDERS:
        assert grants[holder] == {}, holder


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"SageMakerEndpointNames": "concierge-llama-3-1-70b", "GuardrailId": "none"},
            {
                "sagemaker:InvokeEndpoint": {
                    f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/concierge-llama-3-1-70b"
                }
            },
            id="sagemaker-only",
        ),
        pytest.param(
            {"BedrockModelIds": "anthropic.claude-3-haiku-20240307-v1:0", "GuardrailId": "none"},
            {
                "bedrock:InvokeModel": {
                    "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
                }
            },
            id="bedrock-only-no-guardrail",
        ),
    ],
)
def test_only_the_statements_of_configured_lists_are_present(
    template: dict[str, Any], parameters: dict[str, str], expected: dict[str, set[str]]
) -> None:
    # Given a single allow-list configured, and no guardrail (GuardrailId=none)
    # When the step roles' model grants are resolved
    grants = {holder: model_grants(template, holder, parameters) for holder in MODEL_STEPS}

    # Then each step role has that list's statement and no other
    for holder in MODEL_STEPS:
        assert grants[holder] == expected, holder


def test_every_slot_of_every_list_is_granted(template: dict[str, Any]) -> None:
    # Given allow-lists filled to the number of slots the template reads (and no guardrail)
    slots = {parameter: routes.slot_count(template, parameter) for parameter in routes.ALLOW_LISTS}
    model_ids = [f"provider.model-{n}-v1:0" for n in range(slots["BedrockModelIds"])]
    profile_ids = [
        f"eu.provider.model-{n}-v1:0" for n in range(slots["BedrockInferenceProfileIds"])
    ]
    endpoints = [f"endpoint-{n}" for n in range(slots["SageMakerEndpointNames"])]
    parameters = {
        "BedrockModelIds": ",".join(model_ids),
        "BedrockInferenceProfileIds": ",".join(profile_ids),
        "SageMakerEndpointNames": ",".join(endpoints),
        "GuardrailId": "none",
    }

    # When the answer role's model grants are resolved with them
    grants = model_grants(template, "AnswerFunction", parameters)

    # Then every item becomes an ARN: no slot is wired to the wrong item or left out
    access = routes.ModelAccess(frozenset(model_ids), frozenset(profile_ids), frozenset(endpoints))
    assert grants == access.arns(REGION, ACCOUNT)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_grants_what_its_routes_call(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's routes as deployed
    parameters = env_parameters[env]
    specs = routes.all_specs(parameters, routes.template_defaults(template))

    # When the template's policies are resolved with its parameters
    grants = {holder: model_grants(template, holder, parameters) for holder in ROLE_HOLDERS}

    # Then the step roles may invoke exactly what the routes call, and apply the environment's
    # guardrail: the stack's own (GuardrailId empty), the one it names, or none
    expected = routes.required_access(specs).arns(REGION, ACCOUNT)
    guardrail = parameters.get("GuardrailId", "")
    if guardrail != "none" and expected:
        expected["bedrock:ApplyGuardrail"] = {
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/{guardrail}"
            if guardrail
            else "<ChatGuardrail.GuardrailArn>"
        }
    for holder in MODEL_STEPS:
        assert grants[holder] == expected, f"{env}: {holder}"
    # And no other role may call a model
    for holder in set(ROLE_HOLDERS) - set(MODEL_STEPS):
        others = grants[holder]
        # Searching a knowledge base is not a model call: tests/infra/test_knowledge_base.py.
        if holder == "RetrieveFunction":
            others.pop("bedrock:Retrieve", None)
        assert others == {}, f"{env}: {holder}"


def test_retrieve_function_only_reads_the_index_object(template: dict[str, Any]) -> None:
    # When the retrieve function's policies are resolved for the template defaults
    policies = resolved_policies(template, "RetrieveFunction", {})

    # Then it may read the index object and list its bucket (to tell a missing index), with
    # statements of its own and no SAM policy template
    assert [(s["Action"], s["Resource"]) for s in statements(policies)] == [
        ("s3:GetObject", "<KnowledgeBucket.Arn>/index/index.json"),
        ("s3:ListBucket", "<KnowledgeBucket.Arn>"),
    ]
    assert list(policy_templates(policies)) == []


@pytest.mark.parametrize("holder", ["ClassifyFunction", "CondenseFunction"])
def test_classify_and_condense_read_only_the_object_their_categories_are_in(
    template: dict[str, Any], holder: str
) -> None:
    # When the function's own statements are resolved with the local index, then with a
    # knowledge base
    def reads(parameters: dict[str, str]) -> list[tuple[str, str]]:
        return [
            (s["Action"], s["Resource"])
            for s in statements(resolved_policies(template, holder, parameters))
            if not any(str(s["Action"]).startswith(prefix) for prefix in MODEL_ACTIONS)
        ]

    local = reads({})
    knowledge_base = reads({"KnowledgeBaseId": "KBTEST1234"})

    # Then it may read the index object, or the knowledge base's categories.json, and nothing
    # else (listing the bucket tells a missing object from a refused one)
    assert local == [
        ("s3:GetObject", "<KnowledgeBucket.Arn>/index/index.json"),
        ("s3:ListBucket", "<KnowledgeBucket.Arn>"),
    ]
    assert knowledge_base == [
        ("s3:GetObject", "<KnowledgeBucket.Arn>/index/categories.json"),
        ("s3:ListBucket", "<KnowledgeBucket.Arn>"),
    ]


def test_customer_key_use_is_granted_only_when_a_key_is_configured(
    template: dict[str, Any],
) -> None:
    # Given a customer-managed KMS key
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    holders = ("RetrieveFunction", "ClassifyFunction", "CondenseFunction")
    for holder in (*holders, "ChatStateMachine", "ApiFunction"):
        # When each role's policies are resolved without the key and with it
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

        # Then it may use a key only when one is configured, and then only that key
        assert without == [], holder
        assert [s["Resource"] for s in with_key] == [key], holder


def test_semantic_function_reads_and_writes_the_cache_and_embeds_only_with_its_model(
    template: dict[str, Any],
) -> None:
    # Given an embedding model
    titan = "amazon.titan-embed-text-v2:0"

    # When the semantic function's policies are resolved without a model and with it
    offline = resolved_policies(template, "SemanticFunction", {})
    with_model = resolved_policies(template, "SemanticFunction", {"EmbeddingModelId": titan})

    # Then without a model it only reads and writes the cache
    assert [(s["Action"], s["Resource"]) for s in statements(offline)] == [
        (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], "<CacheTable.Arn>")
    ]
    # And with one it may invoke exactly that model
    assert [
        (s["Action"], s["Resource"]) for s in statements(with_model) if "bedrock" in str(s)
    ] == [
        (
            "bedrock:InvokeModel",
            f"arn:aws:bedrock:{REGION}::foundation-model/{titan}",
        )
    ]
