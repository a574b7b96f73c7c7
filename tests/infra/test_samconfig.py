"""samconfig.toml: one stack per environment, each choosing its stage and models explicitly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from concierge import config
from concierge.pricing import PriceTable
from infra.tools import ENVIRONMENTS

MODEL_PARAMETERS = ("ClassifyModel", "CondenseModel", "AnswerModel")


def test_defaults_build_cached_in_parallel_and_validate_with_lint(
    samconfig: dict[str, Any],
) -> None:
    # When samconfig.toml's version and default sections are read
    version = samconfig["version"]
    default = samconfig["default"]

    # Then they name the stack, build cached and in parallel, and validate with lint
    assert version == 0.1
    assert default["global"]["parameters"]["stack_name"] == "concierge"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_deploys_its_own_stack_with_its_stage_and_models(
    samconfig: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's sections and its parameter overrides
    sections = samconfig[env]
    values = env_parameters[env]

    # When SAM CLI merges the sections for `sam deploy`
    deploy = {**sections["global"]["parameters"], **sections["deploy"]["parameters"]}

    # Then it deploys its own stack, reviewed outside dev, with its stage and models
    assert deploy["stack_name"] == f"concierge-{env}"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["region"]
    assert deploy["confirm_changeset"] is (env != "dev"), (
        "only dev deploys without a reviewed change set"
    )
    assert values["Stage"] == env
    for name in MODEL_PARAMETERS:
        assert name in values, f"{env} does not choose {name}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_writes_its_stack_and_overrides_once(
    samconfig: dict[str, Any], env: str
) -> None:
    # Given the commands configured for the environment (deploy, sync, …)
    commands = {name: section["parameters"] for name, section in samconfig[env].items()}

    # When the settings every command reads are looked for in each command's own section
    shared = ("stack_name", "region", "parameter_overrides")
    repeated = {
        name: set(shared) & set(parameters)
        for name, parameters in commands.items()
        if name != "global"
    }

    # Then they are in its global section, which every command reads, and in no command's own
    assert all(key in commands["global"] for key in shared)
    for name, keys in repeated.items():
        assert not keys, f"[{env}.{name}] repeats {shared}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overrides_are_values_the_template_accepts(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the template's parameters and the environment's overrides (CloudFormation would
    # reject a value they do not accept at deploy time; catch it before anyone deploys)
    parameters = template["Parameters"]
    overrides = env_parameters[env]

    # When / Then each override names a parameter, with a value its constraints allow
    for name, value in overrides.items():
        assert name in parameters, f"{env} overrides unknown parameter {name}"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(allowed) for allowed in spec["AllowedValues"]], (
                f"{env}: {name}={value}"
            )
        if "AllowedPattern" in spec:
            # A CommaDelimitedList's pattern applies to each of its items.
            items = value.split(",") if spec["Type"] == "CommaDelimitedList" else [value]
            for item in items:
                assert re.fullmatch(spec["AllowedPattern"], item), f"{env}: {name}={value}"
        if spec["Type"] == "Number":
            number = float(value)
            assert number >= spec.get("MinValue", number), f"{env}: {name}={value}"
            assert number <= spec.get("MaxValue", number), f"{env}: {name}={value}"


def test_side_steps_use_a_cheaper_model_than_the_answer_outside_dev(
    env_parameters: dict[str, dict[str, str]],
) -> None:
    for env in ("staging", "prod"):
        # Given the routes of an environment past dev, and its prices (bundled, then overridden)
        values = env_parameters[env]
        runtime = config.load(
            config.ModelRuntimeSettings,
            {"CONCIERGE_MODEL_PRICES": values.get("ModelPrices", "")},
        )
        prices = PriceTable(runtime.model_prices)

        # When the side steps' model and the answer's are priced
        side_step_price = prices.price(values["ClassifyModel"])
        answer_price = prices.price(values["AnswerModel"])

        # Then classify and condense share one model, another than the answer's
        assert values["ClassifyModel"] == values["CondenseModel"]
        assert values["AnswerModel"] != values["ClassifyModel"], env
        # And it costs less per token, in and out
        assert side_step_price is not None, env
        assert answer_price is not None, env
        assert side_step_price.input < answer_price.input, env
        assert side_step_price.output < answer_price.output, env


def test_browser_origins_are_the_web_page_and_explicit_https(
    env_parameters: dict[str, dict[str, str]],
) -> None:
    for env in ENVIRONMENTS:
        # When the origins an environment lets browsers call from, besides the stack's own web
        # page (always allowed, template.yaml), are read
        origins = [o for o in env_parameters[env]["CorsAllowedOrigins"].strip('"').split(",") if o]

        # Then there are none (the page's distribution alone), or each is an explicit https one
        assert all(origin.startswith("https://") and "*" not in origin for origin in origins), env


def test_model_routes_reject_local_only_specs(template: dict[str, Any]) -> None:
    for step in ("Classify", "Condense", "Answer"):
        # Given the patterns of the step's model and fallbacks (`openai:` reaches an
        # OpenAI-compatible server on the developer's machine: never in AWS)
        model = template["Parameters"][f"{step}Model"]["AllowedPattern"]
        fallbacks = template["Parameters"][f"{step}Fallbacks"]["AllowedPattern"]

        # When / Then they accept Bedrock and SageMaker specs, and reject local-only and
        # malformed ones
        assert re.fullmatch(model, "sagemaker:concierge-llama-3-1-70b:messages")
        assert re.fullmatch(model, "bedrock:eu.anthropic.claude-3-haiku-20240307-v1:0")
        assert not re.fullmatch(model, "openai:llama3.1")
        assert not re.fullmatch(model, "sagemaker:concierge-llama:chat")
        assert re.fullmatch(fallbacks, "")
        assert re.fullmatch(fallbacks, "offline,bedrock:amazon.nova-micro-v1:0,sagemaker:e1:inputs")
        assert not re.fullmatch(fallbacks, "bedrock:amazon.nova-micro-v1:0,openai:llama3.1")
        assert not re.fullmatch(fallbacks, "bedrock:amazon.nova-micro-v1:0,")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_screens_and_guards_and_prod_also_redacts_and_has_its_own_key(
    env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's overrides
    values = env_parameters[env]

    # When its safety and encryption choices are read
    chosen = {
        name: values.get(name)
        for name in ("GuardrailId", "InjectionScreen", "RedactPii", "CustomerManagedKey")
    }

    # Then every environment screens questions and documents and has a guardrail of the
    # stack's own; prod alone redacts personal data and encrypts with a key of its own
    assert chosen == {
        "GuardrailId": "",
        "InjectionScreen": "on",
        "RedactPii": "true" if env == "prod" else "false",
        "CustomerManagedKey": "true" if env == "prod" else "false",
    }
