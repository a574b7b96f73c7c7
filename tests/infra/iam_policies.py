"""What each role of the stack may do, as deployed, and which template line grants it.

- `translate_roles` runs SAM's own translator (in .venv-sam) over template.yaml once: it turns
  SAM policy templates (`LambdaInvokePolicy`, …) into statements and adds the managed policies
  SAM attaches, so the roles are read as CloudFormation receives them.
- `Stack` resolves a role for one parameter set (the conditions, Ref, Sub, GetAtt of
  `infra.cfn_yaml.Evaluator`) and names the stack's resources as the path tests create them in
  moto (a table's Ref is its name, its Arn a DynamoDB ARN, …), so policies and calls speak of
  the same ARNs. It explodes the role into `Grant`s: one Allow of one action on one resource.
- `allowing` evaluates an IAM request against grants with moto's policy evaluator
  (`moto.iam.access_control.IAMPolicy`): its wildcard matching of actions and resources is the
  one moto's IAM enforcement uses.
- `GrantLines` finds the template line of a grant and whether it carries the annotation
  `# not used by the tested paths: <why>` (see tests/infra/test_iam_paths.py).

What is not evaluated, and why: statements with a `Condition` (only the customer-key
statements have one, `kms:ViaService`: DynamoDB and S3 use the key on the role's behalf, a call
the code never makes), the managed policies SAM attaches for logs and X-Ray, and the stack's
model-access policy (tests/infra/test_iam.py and test_routes.py check those).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.iam.access_control import IAMPolicy, PermissionResult

from infra import tools
from infra.cfn_yaml import Evaluator

MARKER = "# not used by the tested paths:"
STACK_NAME = "concierge-test"
SUFFIX = "1Q2W3E4R5T6Y"
# What AWS would name the stack's customer managed key and its guardrail (and its version).
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
GUARDRAIL_ID = "gr1q2w3e4r5t"
GUARDRAIL_VERSION = "1"
# Managed policies SAM attaches (logs, X-Ray): outside what the paths exercise.
SAM_MANAGED = (
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
)
# The stack's own managed policy of the model steps (tests/infra/test_iam.py covers it).
MODEL_ACCESS_POLICY = "ModelAccessPolicy"

# Runs inside .venv-sam: SAM's translation of the template; prints every role's properties.
_TRANSLATE = """
import json, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

text = open(sys.argv[1], encoding="utf-8").read()
# Local code paths are uploaded by `sam deploy`; the translator only accepts S3 locations.
text = re.sub(r"(CodeUri|ContentUri|DefinitionUri): \\S+", r"\\1: s3://bucket/key", text)

class NoManagedPolicies:
    def load(self):
        return {}

output = transform(yaml_parse(text), {}, NoManagedPolicies())
print(json.dumps({
    name: resource["Properties"]
    for name, resource in output["Resources"].items()
    if resource["Type"] == "AWS::IAM::Role"
}))
"""


def translate_roles(template_path: Path = tools.TEMPLATE) -> dict[str, dict[str, Any]]:
    """Every IAM role SAM makes of the template: logical id -> its Properties."""
    python = tools.sam().parent / "python"
    result = tools.run([python, "-c", _TRANSLATE, template_path])
    assert result.returncode == 0, tools.describe(result)
    roles: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return roles


@dataclass(frozen=True)
class Grant:
    """One action allowed on one resource (a pattern), and where the template grants it."""

    holder: str
    origin: str  # the statement's Sid, or "<SAM policy template>#<index in Policies>"
    action: str
    resource: str


def allowing(grants: Iterable[Grant], action: str, resource: str) -> list[Grant]:
    """The grants that allow `action` on `resource` (moto's evaluation, one grant at a time)."""
    return [
        grant
        for grant in grants
        if IAMPolicy(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": grant.action, "Resource": grant.resource}
                    ],
                }
            )
        ).is_action_permitted(action, resource)
        is PermissionResult.PERMITTED
    ]


def policy_grants(holder: str, document: Mapping[str, Any]) -> list[Grant]:
    """The grants of a plain IAM policy document (Allow statements without conditions)."""
    grants: list[Grant] = []
    for number, statement in enumerate(_as_list(document["Statement"])):
        origin = statement.get("Sid") or f"statement#{number}"
        grants.extend(_statement_grants(holder, origin, statement))
    return grants


def _statement_grants(holder: str, origin: str, statement: Mapping[str, Any]) -> Iterator[Grant]:
    unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
    assert statement["Effect"] == "Allow" and not unsupported, (
        f"{holder} {origin}: only Allow statements with Action and Resource are evaluated"
    )
    actions = _as_list(statement["Action"])
    if "Condition" in statement:
        # Customer-key statements: used by DynamoDB or S3 on the role's behalf.
        assert all(action.startswith("kms:") for action in actions), (
            f"{holder} {origin}: a Condition on {actions}; teach tests/infra/iam_policies.py"
        )
        return
    for action in actions:
        for resource in _as_list(statement["Resource"]):
            assert isinstance(resource, str), f"{holder} {origin}: unresolved {resource!r}"
            yield Grant(holder, origin, action, resource)


class Stack:
    """The test stack for one parameter set: its resources' names, its roles' grants, its
    functions' environments."""

    def __init__(
        self,
        template: dict[str, Any],
        roles: Mapping[str, dict[str, Any]],
        parameters: Mapping[str, str],
        *,
        region: str,
        account: str,
    ) -> None:
        self.template = template
        self.roles = roles
        self.parameters = dict(parameters)
        self.region = region
        self.account = account
        self._evaluator = Evaluator(
            template,
            parameters,
            region=region,
            account_id=account,
            stack_name=STACK_NAME,
            strict=True,
        )

    # -- names ---------------------------------------------------------------------------------
    def name(self, logical_id: str) -> str:
        """The physical name the tests give a resource (Ref of a table, bucket or function)."""
        kind = self.template["Resources"][logical_id]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"{STACK_NAME}-{logical_id}-{SUFFIX}".lower()
        if kind == "AWS::Serverless::StateMachine":
            return f"{logical_id}-{SUFFIX}"
        if kind == "AWS::KMS::Key":
            return KEY_ID
        if kind in ("AWS::Bedrock::Guardrail", "AWS::Bedrock::GuardrailVersion"):
            return GUARDRAIL_ID
        return f"{STACK_NAME}-{logical_id}-{SUFFIX}"

    def physical(self, logical_id: str, attribute: str | None = None) -> str:
        """What `!Ref X` (no attribute) or `!GetAtt X.attribute` is in the test stack."""
        resources = self.template["Resources"]
        assert logical_id in resources, f"no resource {logical_id}"
        kind, name = resources[logical_id]["Type"], self.name(logical_id)
        region, account = self.region, self.account
        arns = {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Serverless::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{name}",
            "AWS::Bedrock::Guardrail": f"arn:aws:bedrock:{region}:{account}:guardrail/{name}",
            "AWS::Bedrock::GuardrailVersion": f"arn:aws:bedrock:{region}:{account}:guardrail/{name}",
        }
        assert kind in arns, f"{logical_id} ({kind}): teach Stack.physical its name and ARN"
        # A guardrail's Ref is its ARN; a guardrail, its versions and a key have attributes of
        # their own (the version of a guardrail resource is its working draft).
        by_ref = ("AWS::Serverless::StateMachine", "AWS::Bedrock::Guardrail")
        if attribute is None:
            return arns[kind] if kind in by_ref else name
        if attribute in ("Arn", "GuardrailArn"):
            return arns[kind]
        if attribute in ("Name", "GuardrailId"):
            return name
        if attribute == "Version":
            return "DRAFT" if kind == "AWS::Bedrock::Guardrail" else GUARDRAIL_VERSION
        raise AssertionError(f"{logical_id}.{attribute}: teach Stack.physical this attribute")

    def resolve(self, node: Any) -> Any:
        """`node` with its intrinsic functions applied and resources named as in the test."""
        return self.named(self._evaluator.resolve(node))

    def named(self, value: Any) -> Any:
        """`value` (resolved) with its `<Resource>` and `<Resource.attribute>` placeholders named
        as in the test stack."""
        if isinstance(value, str):
            return re.sub(
                r"<([A-Za-z0-9]+)(?:\.([A-Za-z]+))?>",
                lambda match: self.physical(match.group(1), match.group(2)),
                value,
            )
        if isinstance(value, list):
            return [self.named(item) for item in value]
        if isinstance(value, dict):
            return {key: self.named(item) for key, item in value.items()}
        return value

    # -- functions -----------------------------------------------------------------------------
    def environment(self, function: str) -> dict[str, str]:
        """The function's variables as the template sets them for this parameter set."""
        shared = self.template.get("Globals", {}).get("Function", {})
        variables = {
            **shared.get("Environment", {}).get("Variables", {}),
            **self.template["Resources"][function]["Properties"]
            .get("Environment", {})
            .get("Variables", {}),
        }
        return {name: str(value) for name, value in self.resolve(variables).items()}

    def definition_substitutions(self, state_machine: str) -> dict[str, str]:
        properties = self.template["Resources"][state_machine]["Properties"]
        return {
            name: str(value)
            for name, value in self.resolve(properties["DefinitionSubstitutions"]).items()
        }

    # -- roles ---------------------------------------------------------------------------------
    def grants(self, holder: str) -> list[Grant]:
        """Every Allow of the holder's role for this parameter set: its inline policies,
        exploded; the managed policies SAM adds and the model-access policy left out."""
        role = self.roles[f"{holder}Role"]
        managed = self._evaluator.resolve(role.get("ManagedPolicyArns", []))
        for arn in managed:
            assert arn in SAM_MANAGED or arn == f"<{MODEL_ACCESS_POLICY}>", (
                f"{holder}: managed policy {arn} — the test cannot see its statements"
            )
        grants: list[Grant] = []
        sids: set[str] = set()
        for policy in self.resolve(role.get("Policies", [])):
            index = int(re.sub(r"^.*Policy(\d+)$", r"\1", policy["PolicyName"]))
            template_name = self._policy_template(holder, index)
            for number, statement in enumerate(_as_list(policy["PolicyDocument"]["Statement"])):
                if template_name is not None:
                    origin = f"{template_name}#{index}"
                else:
                    assert "Sid" in statement, (
                        f"{holder}: statement {number} of Policies item {index} needs a Sid"
                    )
                    origin = statement["Sid"]
                    # The Sid is how the template line of a grant is found.
                    assert origin not in sids, f"{holder}: two statements with the Sid {origin}"
                    sids.add(origin)
                grants.extend(_statement_grants(holder, origin, statement))
        return grants

    def _policy_template(self, holder: str, index: int) -> str | None:
        """The SAM policy template of the holder's Policies item `index`, or None (statements)."""
        item = self.template["Resources"][holder]["Properties"]["Policies"][index]
        if isinstance(item, dict) and "Fn::If" in item:
            branches = [b for b in item["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
            assert len(branches) == 1, f"{holder}: Policies item {index} has two branches"
            item = branches[0]
        assert isinstance(item, dict) and len(item) == 1, f"{holder}: Policies item {index}"
        (key,) = item
        return None if key == "Statement" else str(key)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- template lines ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GrantLine:
    number: int  # 1-based
    annotated: bool


class GrantLines:
    """Where template.yaml grants an action of a holder, and whether it says why it is unused.

    A grant is annotated when `MARKER` starts a comment on its line or on one of the comment
    lines directly above it; for an action listed under `Action:`, the `Action:` line (and the
    comments directly above it) counts too, and for a SAM policy template its `- Name:` line.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def find(self, grant: Grant) -> GrantLine:
        start, end = self._policies(grant.holder)
        if "#" in grant.origin:
            name, index = grant.origin.split("#")
            first, last = self._items(start, end)[int(index)]
            number = next(
                n
                for n in range(first, last)
                if re.match(rf"^\s*(-\s+)?{name}:\s*(#.*)?$", self.lines[n])
            )
            return GrantLine(number + 1, self._annotated(number))
        sid = next(
            (
                n
                for n in range(start, end)
                if re.match(rf"^\s*-\s+Sid:\s*{grant.origin}\s*$", self.lines[n])
            ),
            None,
        )
        assert sid is not None, f"{grant.holder}: no `- Sid: {grant.origin}` in its Policies"
        indent = _indent(self.lines[sid])
        stop = next(
            (n for n in range(sid + 1, end) if self._code(n) and _indent(self.lines[n]) <= indent),
            end,
        )
        action = re.escape(grant.action)
        for n in range(sid, stop):
            if re.match(rf"^\s*(-\s+|Action:\s+)?{action}\s*(#.*)?$", self.lines[n]):
                above = [self._annotated(n)]
                if re.match(r"^\s*-\s", self.lines[n]):
                    key = next(k for k in range(n - 1, sid - 1, -1) if "Action:" in self.lines[k])
                    above.append(self._annotated(key))
                return GrantLine(n + 1, any(above))
        raise AssertionError(
            f"{grant.holder} {grant.origin}: no line of its own grants {grant.action} "
            "(write one action per line, or `Action: <action>`)"
        )

    def _policies(self, holder: str) -> tuple[int, int]:
        """The lines of the holder's `Policies:` block: [start, end)."""
        begin = self.lines.index(f"  {holder}:")
        end = next(
            (n for n in range(begin + 1, len(self.lines)) if re.match(r"^  \S", self.lines[n])),
            len(self.lines),
        )
        policies = next(
            n for n in range(begin, end) if re.match(r"^      Policies:\s*$", self.lines[n])
        )
        stop = next(
            (n for n in range(policies + 1, end) if self._code(n) and _indent(self.lines[n]) <= 6),
            end,
        )
        return policies + 1, stop

    def _items(self, start: int, end: int) -> list[tuple[int, int]]:
        """The Policies list's items: [first, last) line ranges."""
        indent = min(_indent(self.lines[n]) for n in range(start, end) if self._code(n))
        heads = [
            n
            for n in range(start, end)
            if self._code(n)
            and _indent(self.lines[n]) == indent
            and self.lines[n].lstrip().startswith("- ")
        ]
        return list(zip(heads, [*heads[1:], end], strict=True))

    def _code(self, number: int) -> bool:
        stripped = self.lines[number].strip()
        return bool(stripped) and not stripped.startswith("#")

    def _annotated(self, number: int) -> bool:
        """MARKER on this line's comment, or in the comment block directly above it."""
        line = self.lines[number]
        if "#" in line and line[line.index("#") :].startswith(MARKER):
            return True
        above = number - 1
        while above >= 0 and self.lines[above].strip().startswith("#"):
            if self.lines[above].strip().startswith(MARKER):
                return True
            above -= 1
        return False


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
