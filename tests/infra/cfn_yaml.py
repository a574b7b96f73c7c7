"""CloudFormation YAML for the infra tests: a loader for the short tags and a small evaluator.

`load_template` reads template.yaml with `!Ref`, `!Sub`, `!GetAtt`, `!If`, … turned into their
long JSON forms (`{"Ref": …}`, `{"Fn::Sub": …}`), so tests can walk the document as plain data.

`Evaluator` resolves the intrinsic functions the template uses (Ref, Sub, GetAtt, Select, Split,
Join, If and the condition functions) for a given set of parameter values, the way
CloudFormation would at deploy time. Resources resolve to placeholders (`<ChatApi>`,
`<CacheTable.Arn>`), since nothing is deployed; a Ref or GetAtt to a resource whose `Condition`
leaves it out fails, as the deploy would. It lets a test ask "what would this policy grant in
prod?" without an AWS account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# Short tag -> long form. `!GetAtt A.B` is split into ["A", "B"]; `!Condition X` is {"Condition": X}.
_FUNCTION_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "GetAtt",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form intrinsic functions."""


def _construct(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _tag_constructor(name: str) -> Any:
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct(loader, node)
        if name == "Ref":
            return {"Ref": value}
        if name == "Condition":
            return {"Condition": value}
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{name}": value}

    return construct


for _name in (*_FUNCTION_TAGS, "Ref", "Condition"):
    CfnLoader.add_constructor(f"!{_name}", _tag_constructor(_name))


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into plain dicts and lists."""
    # CfnLoader is a SafeLoader subclass: no arbitrary Python objects.
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Evaluator:
    """Resolve intrinsic functions of one template for given parameter values.

    Parameters not given take their template default. With `strict=True` the branch of an
    `Fn::If` that is not taken is evaluated too (and thrown away), so an expression that would
    fail for some other parameter value - an `Fn::Select` out of range, say - fails here as well.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str] | None = None,
        *,
        region: str = "eu-west-1",
        account_id: str = "123456789012",
        stack_name: str = "concierge-test",
        strict: bool = False,
    ) -> None:
        self.template = template
        self.strict = strict
        given = dict(parameters or {})
        unknown = set(given) - set(template.get("Parameters", {}))
        if unknown:
            raise KeyError(f"not parameters of the template: {sorted(unknown)}")
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            raw = given.get(name, spec.get("Default"))
            if raw is None:
                raise KeyError(f"parameter {name} has no default and no value was given")
            raw = str(raw)
            is_list = spec.get("Type") == "CommaDelimitedList"
            self.parameters[name] = [part.strip() for part in raw.split(",")] if is_list else raw
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/id",
        }
        self._conditions: dict[str, bool] = {}
        # > 0 while strict mode evaluates a branch CloudFormation would not take.
        self._speculative = 0

    def creates(self, logical_id: str) -> bool:
        """Whether the resource is part of the stack for these parameters (its `Condition`)."""
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def _resource(self, logical_id: str, reference: str) -> str:
        if not self._speculative and not self.creates(logical_id):
            raise ValueError(f"{reference} of {logical_id}, which these parameters do not create")
        return logical_id

    # -- conditions ------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((key, args),) = node.items()
            if key == "Condition":
                return self.condition(args)
            if key == "Fn::Equals":
                left, right = (self.resolve(arg) for arg in args)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._truth(args[0])
            if key == "Fn::And":
                return all(self._truth(arg) for arg in args)
            if key == "Fn::Or":
                return any(self._truth(arg) for arg in args)
        raise ValueError(f"not a condition: {node!r}")

    # -- values ----------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        """The value of `node` with every intrinsic function applied."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            if key == "Ref":
                return self._ref(args)
            if key.startswith("Fn::"):
                return self._function(key, args)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template["Resources"]:
            return f"<{self._resource(name, 'Ref')}>"
        raise KeyError(f"Ref to unknown name {name!r}")

    def _function(self, key: str, args: Any) -> Any:
        if key == "Fn::If":
            name, when_true, when_false = args
            chosen, other = (
                (when_true, when_false) if self.condition(name) else (when_false, when_true)
            )
            if self.strict:
                self._speculative += 1
                try:
                    self.resolve(other)
                finally:
                    self._speculative -= 1
            return self.resolve(chosen)
        if key == "Fn::Sub":
            return self._sub(args)
        if key == "Fn::GetAtt":
            logical_id, attribute = args if isinstance(args, list) else args.split(".", 1)
            if logical_id not in self.template["Resources"]:
                raise KeyError(f"GetAtt of unknown resource {logical_id!r}")
            return f"<{self._resource(logical_id, 'GetAtt')}.{attribute}>"
        if key == "Fn::Join":
            delimiter, values = args
            return delimiter.join(str(value) for value in self.resolve(values))
        if key == "Fn::Split":
            delimiter, source = args
            return str(self.resolve(source)).split(delimiter)
        if key == "Fn::Select":
            index, values = self.resolve(args[0]), self.resolve(args[1])
            position = int(index)
            if not 0 <= position < len(values):
                raise IndexError(f"Fn::Select index {position} out of range for {values!r}")
            return values[position]
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._truth({key: args})
        raise NotImplementedError(f"{key} is not supported by this evaluator")

    def _sub(self, args: Any) -> str:
        if isinstance(args, str):
            text, variables = args, {}
        else:
            text, raw_variables = args
            variables = {name: self.resolve(value) for name, value in raw_variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                self._resource(name.split(".", 1)[0], "GetAtt")
                return f"<{name}>"
            value = self._ref(name)
            if isinstance(value, list):
                raise ValueError(f"Fn::Sub cannot insert the list parameter {name}")
            return str(value)

        return _SUB_VARIABLE.sub(replace, text)
