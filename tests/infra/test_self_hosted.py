"""The optional self-hosted model, synthesised both ways: with its parameters the stack hosts a
JumpStart model on an endpoint that scales with the day, the routes may name it and the step
roles may invoke it; with them empty (the default, every environment today) none of it exists.
Both templates pass cfn-lint and `sam validate --lint` (checkov: test_checkov.py's modes)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import routes, self_hosted, tools
from infra.cfn_yaml import Evaluator, load_template
from infra.self_hosted import ENDPOINT, PARAMETERS, evaluator, hosted_resources
from infra.test_iam import MODEL_STEPS, ROLE_HOLDERS, model_grants
from infra.tools import ENVIRONMENTS

MODES = {"without": {}, "with": PARAMETERS}


def resolved(template: dict[str, Any], name: str) -> dict[str, Any]:
    properties: dict[str, Any] = evaluator(template, PARAMETERS).resolve(
        template["Resources"][name]["Properties"]
    )
    return properties


# -- without the parameters --------------------------------------------------------------------


@pytest.mark.parametrize("env", ["defaults", *ENVIRONMENTS])
def test_without_a_model_id_none_of_it_exists(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the template defaults, or an environment as deployed (no SelfHostedModelId)
    parameters = {} if env == "defaults" else env_parameters[env]
    stack = evaluator(template, parameters)

    # When the resources, outputs and model grants are resolved
    created = [name for name in hosted_resources(template) if stack.creates(name)]
    outputs = [
        name
        for name, body in template["Outputs"].items()
        if body.get("Condition") == "HostsModel" and stack.condition("HostsModel")
    ]
    grants = model_grants(template, "AnswerFunction", parameters)

    # Then no self-hosted resource, output or grant is there
    assert hosted_resources(template), "the template has no self-hosted resources at all"
    assert created == [] and outputs == []
    assert "<SelfHostedEndpoint>" not in grants.get("sagemaker:InvokeEndpoint", set())


# -- with them ---------------------------------------------------------------------------------


def test_with_a_model_id_the_stack_hosts_it_behind_its_own_endpoint(
    template: dict[str, Any],
) -> None:
    # Given the self-hosted parameters
    stack = evaluator(template, PARAMETERS)

    # When the model, its endpoint configuration and endpoint are resolved
    model = resolved(template, "SelfHostedModel")
    config = resolved(template, "SelfHostedEndpointConfig")
    endpoint = resolved(template, "SelfHostedEndpoint")

    # Then every self-hosted resource exists
    assert all(stack.creates(name) for name in hosted_resources(template))
    # And the model is the JumpStart model's image and weights, its licence accepted, isolated
    container = model["PrimaryContainer"]
    assert container["Image"] == self_hosted.IMAGE
    assert container["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": self_hosted.WEIGHTS,
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
        "ModelAccessConfig": {"AcceptEula": True},
    }
    assert model["EnableNetworkIsolation"] is True
    assert {"Key": "sagemaker-sdk:jumpstart-model-id", "Value": self_hosted.MODEL_ID} in model[
        "Tags"
    ]
    # And it runs on the instance type, starting at the minimum, behind the endpoint the routes
    # name
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == "<SelfHostedModel.ModelName>"
    assert variant["InstanceType"] == "ml.g5.2xlarge"
    assert variant["InitialInstanceCount"] == "1"
    assert endpoint["EndpointName"] == ENDPOINT


def test_a_model_whose_licence_is_not_accepted_is_not_downloaded_on_its_behalf(
    template: dict[str, Any],
) -> None:
    # Given the parameters without the licence accepted
    parameters = {**PARAMETERS, "SelfHostedAcceptEula": "false"}

    # When the model's weights are resolved
    model = evaluator(template, parameters).resolve(
        template["Resources"]["SelfHostedModel"]["Properties"]
    )

    # Then SageMaker is not told the licence was accepted
    assert "ModelAccessConfig" not in model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]


def test_the_endpoint_follows_the_load_within_business_hours_and_shrinks_outside_them(
    template: dict[str, Any],
) -> None:
    # When the scalable target and its policy are resolved
    target = resolved(template, "SelfHostedScaling")
    policy = resolved(template, "SelfHostedScalingPolicy")
    actions = {action["ScheduledActionName"]: action for action in target["ScheduledActions"]}

    # Then the endpoint's variant scales between the minimum and the maximum
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ResourceId"] == "endpoint/<SelfHostedEndpoint.EndpointName>/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == ("1", "4")
    # And target tracking on invocations per instance follows the load
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == "<SelfHostedScaling>"
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == "25"
    # And business hours raise the floor and the ceiling, in the given time zone; their end
    # brings both down to the minimum
    start, end = actions["business-hours-start"], actions["business-hours-end"]
    assert start["ScalableTargetAction"] == {"MinCapacity": "2", "MaxCapacity": "4"}
    assert end["ScalableTargetAction"] == {"MinCapacity": "1", "MaxCapacity": "1"}
    assert start["Timezone"] == end["Timezone"] == "Europe/Madrid"
    assert start["Schedule"].startswith("cron(") and end["Schedule"].startswith("cron(")


def test_the_step_roles_may_invoke_the_endpoint_without_an_allow_list_entry(
    template: dict[str, Any],
) -> None:
    # Given the self-hosted parameters: SageMakerEndpointNames stays empty
    assert "SageMakerEndpointNames" not in PARAMETERS

    # When the roles' model grants are resolved
    grants = {holder: model_grants(template, holder, PARAMETERS) for holder in ROLE_HOLDERS}

    # Then each model step may invoke the stack's endpoint (its ARN, CloudFormation's Ref) and
    # the fallback's model, and no other role may invoke anything
    for holder in MODEL_STEPS:
        assert grants[holder]["sagemaker:InvokeEndpoint"] == {"<SelfHostedEndpoint>"}, holder
        assert grants[holder]["bedrock:InvokeModel"] == {
            "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
        }
    for holder in set(ROLE_HOLDERS) - set(MODEL_STEPS):
        assert "sagemaker:InvokeEndpoint" not in grants[holder], holder


def test_the_routes_naming_the_endpoint_need_nothing_more_than_the_stack_grants(
    template: dict[str, Any],
) -> None:
    # Given the routes of the self-hosted parameters (the endpoint first, Bedrock after it)
    defaults = routes.template_defaults(template)
    specs = routes.all_specs(PARAMETERS, defaults)

    # When what they need is compared with what the allow-lists and the stack grant
    needed = routes.required_access(specs)
    allowed = routes.allowed_access(PARAMETERS, defaults, stack_name=self_hosted.STACK_NAME)

    # Then the two agree exactly, and the answer route tries the endpoint before Bedrock
    assert needed == allowed
    assert routes.route(PARAMETERS, "Answer", defaults) == [
        f"sagemaker:{ENDPOINT}:messages",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
    ]


def test_its_model_role_pulls_exactly_its_image_and_reads_exactly_its_weights(
    template: dict[str, Any],
) -> None:
    # When the model's role is resolved
    role = resolved(template, "SelfHostedModelRole")
    (policy,) = role["Policies"]
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}

    # Then only SageMaker assumes it, the image's repository is the one of the image URI, and
    # the weights are read from their prefix only
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"
    }
    assert by_sid["PullImage"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:763104351884:repository/djl-inference"
    )
    assert by_sid["ReadWeights"]["Resource"] == (
        f"arn:aws:s3:::{self_hosted.WEIGHTS.removeprefix('s3://')}*"
    )
    assert by_sid["ListWeights"]["Resource"] == f"arn:aws:s3:::{self_hosted.WEIGHTS_BUCKET}"
    # And the two actions without resources are alone on "*", metrics kept to their namespace
    star = {sid for sid, s in by_sid.items() if s["Resource"] == "*"}
    assert star == {"SignInToRegistry", "PublishEndpointMetrics"}
    assert by_sid["PublishEndpointMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}
    }


def test_the_sagemaker_alarms_watch_the_stacks_endpoint_too(template: dict[str, Any]) -> None:
    # Given the self-hosted parameters and an allow-listed endpoint besides
    parameters = {**PARAMETERS, "SageMakerEndpointNames": "partner-endpoint"}
    stack = evaluator(template, parameters)

    # When the SageMaker alarms' queries are resolved
    queries = [
        stack.resolve(template["Resources"][name]["Properties"])["Metrics"][0]["Expression"]
        for name in ("SageMakerErrorsAlarm", "SageMakerLatencyAlarm")
    ]

    # Then each reads both endpoints
    for query in queries:
        names = set(re.findall(r"EndpointName = '([^']*)'", query))
        assert names == {"partner-endpoint", "<SelfHostedEndpoint.EndpointName>"}, query


def test_a_model_id_without_its_image_or_weights_is_refused_before_deploying(
    template: dict[str, Any],
) -> None:
    # Given the rule over the self-hosted parameters
    rule = template["Rules"]["SelfHostedModelIsComplete"]

    def holds(parameters: dict[str, str]) -> bool:
        stack = Evaluator(template, parameters)
        if not stack.resolve(rule["RuleCondition"]):
            return True
        return all(stack.resolve(assertion["Assert"]) for assertion in rule["Assertions"])

    # When it is checked with everything, without the image, without the weights, and empty
    verdicts = [
        holds(PARAMETERS),
        holds({**PARAMETERS, "SelfHostedImageUri": ""}),
        holds({**PARAMETERS, "SelfHostedModelDataUri": ""}),
        holds({}),
    ]

    # Then only a complete model, or none, passes
    assert verdicts == [True, False, False, True]


# -- the AWS tools accept both -----------------------------------------------------------------


@pytest.fixture(scope="module", params=MODES, ids=[f"{mode}-self-hosted" for mode in MODES])
def synthesised(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml with the mode's parameters as its defaults (what the tools check a
    parameter's value and the conditions with)."""
    document = load_template(tools.TEMPLATE)
    for name, value in MODES[request.param].items():
        document["Parameters"][name]["Default"] = value
    folder = tmp_path_factory.mktemp(request.param)
    path = folder / "template.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_cfn_lint_reports_nothing_either_way(synthesised: Path) -> None:
    # When cfn-lint checks the template with the mode's defaults
    result = tools.run([tools.cfn_lint(), synthesised])

    # Then it reports nothing
    assert result.returncode == 0, tools.describe(result)


def test_sam_validate_with_lint_accepts_it_either_way(synthesised: Path) -> None:
    # When SAM validates and lints the template with the mode's defaults
    result = tools.run([tools.sam(), "validate", "--lint", "--template-file", synthesised])

    # Then it is valid
    assert result.returncode == 0, tools.describe(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr
