"""Fixtures of the infra tests: the parsed template, samconfig and each environment's
parameters as SAM CLI reads them."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from infra.cfn_yaml import load_template
from infra.tools import ENVIRONMENTS, SAMCONFIG, TEMPLATE, sam_parameter_overrides


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="session")
def env_parameters() -> dict[str, dict[str, str]]:
    """Each environment's deploy overrides, as SAM CLI reads them from samconfig.toml."""
    parsed = sam_parameter_overrides([(env, "deploy") for env in ENVIRONMENTS])
    return {env: parsed[f"{env}.deploy"] for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def dev_sync_parameters() -> dict[str, str]:
    return sam_parameter_overrides([("dev", "sync")])["dev.sync"]
