"""A deployed environment as the command line reaches it: the stack samconfig.toml names for it,
the stack's outputs (CloudFormation DescribeStacks), and a token of a user of its Cognito app
client — all through the standard AWS configuration of the caller.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concierge_cli.support import UsageError

SAMCONFIG = "samconfig.toml"


class StackError(Exception):
    """The environment has no stack, or the stack cannot be read or signed in to."""


@dataclass(frozen=True)
class Stack:
    name: str
    region: str | None
    outputs: dict[str, str]

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise StackError(f"stack {self.name} has no output {key}: deploy this version first")
        return self.outputs[key]

    def sign_in(self, user: str, password: str) -> str:
        """An ID token of `user` from the stack's Cognito app client (USER_PASSWORD_AUTH, which
        the template enables for CLI clients). Stacks signing in with an issuer of their own
        (AuthIssuer) have no pool: their tokens come from that issuer."""
        from botocore.exceptions import BotoCoreError, ClientError

        client_id = self.output("UserPoolClientId")
        try:
            reply = _client("cognito-idp", self.region).initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": user, "PASSWORD": password},
            )
        except (ClientError, BotoCoreError) as error:
            raise StackError(f"cannot sign {user} in to stack {self.name}: {error}") from None
        if "AuthenticationResult" not in reply:
            # A challenge (a new password, MFA) needs a person: the eval user must be ready.
            challenge = reply.get("ChallengeName", "unknown")
            raise StackError(f"signing {user} in to stack {self.name} asks for {challenge}")
        return str(reply["AuthenticationResult"]["IdToken"])


def environment(root: Path, env: str) -> tuple[str, str | None]:
    """The stack name and region samconfig.toml gives environment `env` (a usage error when
    it names none)."""
    path = root / SAMCONFIG
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"--env needs {path}: {error}") from None
    environments = sorted(
        name for name, section in config.items() if isinstance(section, dict) and name != "default"
    )
    parameters = config.get(env, {}).get("global", {}).get("parameters", {})
    if env == "default" or "stack_name" not in parameters:
        raise UsageError(
            f"--env {env}: samconfig.toml has no stack for it (environments: "
            f"{', '.join(environments)})"
        )
    return str(parameters["stack_name"]), parameters.get("region")


def stack(root: Path, env: str) -> Stack:
    """Environment `env`'s stack with its outputs."""
    from botocore.exceptions import BotoCoreError, ClientError

    name, region = environment(root, env)
    try:
        found = _client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise StackError(f"cannot read stack {name}: {error}") from None
    outputs = {
        output["OutputKey"]: str(output["OutputValue"])
        for described in found
        for output in described.get("Outputs", [])
    }
    return Stack(name, region, outputs)


def _client(service: str, region: str | None) -> Any:
    from concierge import wiring

    return wiring.aws_client(service, region=region) if region else wiring.aws_client(service)
