"""samconfig.toml: one stack per environment, each choosing its stage and models explicitly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.tools import ENVIRONMENTS

pytestmark = pytest.mark.infra

MODEL_PARAMETERS = ("ClassifyModel", "CondenseModel", "AnswerModel")


def overrides(samconfig: dict[str, Any], env: str) -> dict[str, str]:
    raw = samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
    items = raw if isinstance(raw, list) else raw.split()
    return dict(item.split("=", 1) for item in items)


def test_defaults_build_cached_in_parallel_and_validate_with_lint(
    samconfig: dict[str, Any],
) -> None:
    assert samconfig["version"] == 0.1
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "concierge"
    assert samconfig["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert samconfig["default"]["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_deploys_its_own_stack_with_its_stage_and_models(
    samconfig: dict[str, Any], env: str
) -> None:
    deploy = samconfig[env]["deploy"]["parameters"]
    values = overrides(samconfig, env)

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
def test_overrides_are_values_the_template_accepts(
    template: dict[str, Any], samconfig: dict[str, Any], env: str
) -> None:
    # CloudFormation would reject these at deploy time; catch them before anyone deploys.
    parameters = template["Parameters"]
    for name, value in overrides(samconfig, env).items():
        assert name in parameters, f"{env} overrides unknown parameter {name}"
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(allowed) for allowed in spec["AllowedValues"]], (
                f"{env}: {name}={value}"
            )
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"{env}: {name}={value}"
        if spec["Type"] == "Number":
            number = float(value)
            assert number >= spec.get("MinValue", number), f"{env}: {name}={value}"
            assert number <= spec.get("MaxValue", number), f"{env}: {name}={value}"


def test_side_steps_use_a_cheaper_model_than_the_answer_outside_dev(
    samconfig: dict[str, Any],
) -> None:
    for env in ("staging", "prod"):
        values = overrides(samconfig, env)
        assert values["ClassifyModel"] == values["CondenseModel"]
        assert values["AnswerModel"] != values["ClassifyModel"], env


def test_browser_origins_are_explicit_https_outside_dev(samconfig: dict[str, Any]) -> None:
    for env in ("staging", "prod"):
        origins = overrides(samconfig, env)["CorsAllowedOrigins"].split(",")
        assert origins
        assert all(origin.startswith("https://") and "*" not in origin for origin in origins), env
