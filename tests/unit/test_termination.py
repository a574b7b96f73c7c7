"""cli/concierge_cli/termination.py: the termination protection `make deploy ENV=prod` turns on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from concierge_cli import termination

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_protects_the_stack_samconfig_names_for_the_environment_in_its_region() -> None:
    # Given a CloudFormation client stubbed to expect the protection of prod's stack
    made: list[dict[str, Any]] = []
    client = boto3.client(
        "cloudformation",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.add_response(
        "update_termination_protection",
        {"StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/concierge-prod/id"},
        {"EnableTerminationProtection": True, "StackName": "concierge-prod"},
    )

    def factory(service: str, **settings: Any) -> Any:
        made.append({"service": service, **settings})
        return client

    # When prod's stack is protected with the repository's samconfig.toml
    with stubber:
        name = termination.protect("prod", REPO_ROOT / "samconfig.toml", factory)

    # Then the call was made once, to CloudFormation in prod's region, for prod's stack
    stubber.assert_no_pending_responses()
    assert name == "concierge-prod"
    assert made == [{"service": "cloudformation", "region_name": "eu-west-1"}]


@pytest.mark.parametrize("env", ["default", "qa"])
def test_an_environment_without_a_stack_is_a_usage_error(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment samconfig.toml has no stack for
    monkeypatch.setattr(termination, "SAMCONFIG", REPO_ROOT / "samconfig.toml")

    # When the command is run for it
    code = termination.main([env])

    # Then it exits 2 and says so, having called nothing
    assert code == 2
    assert f"no stack for environment '{env}'" in capsys.readouterr().err


def test_the_command_takes_exactly_one_environment(capsys: pytest.CaptureFixture[str]) -> None:
    # When it is run without one
    code = termination.main([])

    # Then it prints its usage and exits 2
    assert code == 2
    assert "usage: termination.py ENV" in capsys.readouterr().err
