"""Read template.yaml (CloudFormation YAML with short tags) so the local runtime builds its
tables, functions and substitutions from the template itself, not from a second copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when PyYAML was built with it (its wheels are): the pure-Python one takes
# about 0.2 s of every local start on template.yaml.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that turns `!Ref X` into {"Ref": "X"} and `!Sub …` into {"Fn::Sub": …}."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: dict[str, Any]


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") == kind
    }


def functions(template: dict[str, Any], root: Path) -> list[FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    return [
        FunctionSpec(
            logical_id=logical_id,
            code_dir=root / resource["Properties"]["CodeUri"],
            handler=resource["Properties"].get(
                "Handler", globals_.get("Handler", "app.lambda_handler")
            ),
        )
        for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items()
    ]


def state_machine(template: dict[str, Any], root: Path) -> StateMachineSpec:
    machines = resources_of_type(template, "AWS::Serverless::StateMachine")
    if len(machines) != 1:
        raise ValueError(f"expected one state machine in the template, found {len(machines)}")
    logical_id, resource = next(iter(machines.items()))
    properties = resource["Properties"]
    return StateMachineSpec(
        logical_id=logical_id,
        definition_path=root / properties["DefinitionUri"],
        substitutions=dict(properties.get("DefinitionSubstitutions", {})),
    )


def table_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Key schema, attributes, indexes and billing of each DynamoDB table, ready for\n    CreateTable."""
    tables = {}
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        properties = resource["Properties"]
        tables[logical_id] = {
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in properties:
            tables[logical_id]["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    return tables


def substitute(definition: str, values: dict[str, str]) -> str:
    """Apply DefinitionSubstitutions the way SAM does: `${Name}` → value."""
    for name, value in values.items():
        definition = definition.replace("${" + name + "}", value)
    return definition
