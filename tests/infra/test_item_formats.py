"""The state machine's direct DynamoDB tasks and the DynamoDB adapter agree on every item format.

statemachine/chat.asl.json writes answers and turns itself (no Lambda in between), and Python
reads them back; `concierge.adapters.dynamodb.formats` is the one owner of the formats, and this
test holds the definition to it in both directions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moto.dynamodb.parsing
import pytest

from concierge.adapters.dynamodb.formats import CHAIN_TABLES, ItemFormat
from infra.tools import REPO_ROOT

DEFINITION = REPO_ROOT / "statemachine" / "chat.asl.json"
_TASK = re.compile(r"^arn:aws:states:::(?:aws-sdk:)?dynamodb:(\w+)$")
_TABLE = re.compile(r"^\$\{(\w+)\}$")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FUNCTION_ARGUMENT = re.compile(rf"\b(?:attribute_exists|attribute_not_exists)\(({_NAME})\)")
_COMPARISON = re.compile(rf"\b({_NAME})\s*(?:=|<>|<=|>=|<|>)\s*(:{_NAME})")
_UPDATE_CLAUSE = re.compile(r"\b(SET|ADD|REMOVE|DELETE)\b")


@dataclass(frozen=True)
class Use:
    """One attribute a task touches: how, with which DynamoDB type ("" when it says none)."""

    state: str
    table: str
    attribute: str
    type: str
    writes: bool
    # Named in an expression (where a reserved word would be refused), not only in Key or Item.
    in_expression: bool = False


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"])


def _type_of(value: dict[str, Any]) -> str:
    (key,) = value
    return key.removesuffix(".$")


def _uses(definition: dict[str, Any], text: str) -> Iterator[Use]:
    for state_name, state in _states(definition):
        match = _TASK.match(str(state.get("Resource", "")))
        if state.get("Type") != "Task" or match is None:
            continue
        action, parameters = match.group(1), state["Parameters"]
        table_match = _TABLE.match(parameters["TableName"])
        assert table_match, f"{state_name}: TableName must be a ${{…TableName}} substitution"
        table = table_match.group(1)
        values = parameters.get("ExpressionAttributeValues", {})

        def use(
            attribute: str,
            kind: str,
            writes: bool,
            table: str = table,
            state: str = state_name,
            in_expression: bool = True,
        ) -> Use:
            return Use(state, table, attribute, kind, writes, in_expression)

        # UpdateItem creates the item it does not find: its key is written too.
        for attribute, value in parameters.get("Key", {}).items():
            yield use(
                attribute, _type_of(value), writes=action == "updateItem", in_expression=False
            )
        for attribute, value in parameters.get("Item", {}).items():
            yield use(attribute, _type_of(value), writes=True, in_expression=False)
        for expression in ("KeyConditionExpression", "ConditionExpression", "FilterExpression"):
            clause = parameters.get(expression, "")
            for attribute in _FUNCTION_ARGUMENT.findall(clause):
                yield use(attribute, "", writes=False)
            for attribute, placeholder in _COMPARISON.findall(clause):
                yield use(attribute, _type_of(values[placeholder]), writes=False)
        for attribute in re.findall(_NAME, parameters.get("ProjectionExpression", "")):
            yield use(attribute, "", writes=False)
        yield from _updates(parameters.get("UpdateExpression", ""), values, use)
        # What later states read of a getItem's result: $.<result path>.Item.<attribute>.<type>
        if action == "getItem" and state.get("ResultPath"):
            prefix = re.escape(state["ResultPath"]) + r"\.Item\."
            for attribute, kind in re.findall(prefix + rf"({_NAME})\.(S|N|B|M|L|BOOL)\b", text):
                yield use(attribute, kind, writes=False, in_expression=False)


def _updates(expression: str, values: dict[str, Any], use: Any) -> Iterator[Use]:
    parts = _UPDATE_CLAUSE.split(expression)
    for body in parts[2::2]:
        for action in (part.strip() for part in body.split(",") if part.strip()):
            attribute, *rest = action.replace("=", " ").split()
            placeholder = next((token for token in rest if token.startswith(":")), None)
            kind = _type_of(values[placeholder]) if placeholder else ""
            yield use(attribute, kind, writes=True)


@pytest.fixture(scope="module")
def uses() -> list[Use]:
    text = DEFINITION.read_text(encoding="utf-8")
    found = list(_uses(json.loads(text), text))
    assert found, "no direct DynamoDB task found in the definition"
    return found


def _format(use: Use) -> ItemFormat:
    assert use.table in CHAIN_TABLES, (
        f"{use.state} uses ${{{use.table}}}: add its item format to CHAIN_TABLES in "
        "concierge/adapters/dynamodb/formats.py"
    )
    return CHAIN_TABLES[use.table]


def test_every_attribute_a_task_touches_is_defined_with_its_type(uses: list[Use]) -> None:
    # Given every attribute the definition's DynamoDB tasks write, read or project
    # When each is looked up in the adapter's format of its table
    problems = []
    for use in uses:
        item_format = _format(use)
        if use.attribute not in item_format.names:
            problems.append(
                f"{use.state}: {use.attribute} is not an attribute of {item_format.table}"
            )
        elif use.type and use.type != item_format[use.attribute].type:
            problems.append(
                f"{use.state}: {use.attribute} is {use.type} here, "
                f"{item_format[use.attribute].type} in the format"
            )

    # Then it is defined there, with the same type
    assert problems == []


def test_the_chain_writes_what_the_format_says_it_writes_and_nothing_else(
    uses: list[Use],
) -> None:
    for table, item_format in CHAIN_TABLES.items():
        # Given the attributes the format says the state machine writes into this table
        declared = {a.name for a in item_format.attributes if a.written_by == "chain"}

        # When they are compared with what its tasks write
        written = {use.attribute for use in uses if use.table == table and use.writes}

        # Then they are the same: none forgotten in the definition, none written behind the
        # adapter's back
        assert written == declared, f"${{{table}}}: written {sorted(written)}"


def test_no_expression_names_a_reserved_word(uses: list[Use]) -> None:
    # Given DynamoDB's reserved words (moto's copy of the list)
    reserved_list = Path(moto.dynamodb.parsing.__file__).with_name("reserved_keywords.txt")
    reserved = {word.strip().upper() for word in reserved_list.read_text().splitlines()}

    # When the attributes the definition's expressions and keys name are looked up
    named = {use.attribute for use in uses if use.in_expression}

    # Then none is reserved: an expression naming one is refused (or needs #placeholders)
    assert sorted(name for name in named if name.upper() in reserved) == []
