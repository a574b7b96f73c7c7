"""Turn on termination protection of an environment's stack: `python termination.py ENV`.

`make deploy ENV=prod` runs it after `sam deploy` (SAM CLI has no option for it): a protected
stack refuses `sam delete` and every DeleteStack until someone turns the protection off on
purpose. It runs in the SAM CLI's virtual environment, the only one a deploy job has, so it
needs nothing but the standard library and boto3: samconfig.toml names the stack and its
region, the standard AWS configuration gives the credentials.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"


def stack_of(samconfig: Path, env: str) -> tuple[str, str | None]:
    """The stack name and region samconfig.toml gives environment `env`."""
    config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    parameters = config.get(env, {}).get("global", {}).get("parameters", {})
    if env == "default" or "stack_name" not in parameters:
        raise ValueError(f"{samconfig.name} has no stack for environment {env!r}")
    return str(parameters["stack_name"]), parameters.get("region")


def protect(env: str, samconfig: Path, client: Callable[..., Any]) -> str:
    """Turn the protection on (it is idempotent); the stack's name."""
    name, region = stack_of(samconfig, env)
    cloudformation = client("cloudformation", region_name=region)
    cloudformation.update_termination_protection(EnableTerminationProtection=True, StackName=name)
    return name


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: termination.py ENV", file=sys.stderr)
        return 2
    import boto3

    try:
        name = protect(argv[0], SAMCONFIG, boto3.client)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"termination protection is on for stack {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
