"""Fixtures of the infra tests: the parsed template and samconfig."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from infra.cfn_yaml import load_template
from infra.tools import SAMCONFIG, TEMPLATE


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as handle:
        return tomllib.load(handle)
