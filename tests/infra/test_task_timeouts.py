"""Each Lambda the chain invokes times out when its task does: a function allowed longer than its
task would go on working (and paying for a model) after the state machine has given up on it,
and one allowed less would fail a task that still had time."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import tools

_PLACEHOLDER = re.compile(r"^\$\{(\w+)\}$")


def _invoke_tasks(states: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every lambda:invoke task of `states` (Parallel branches and Map iterators included):
    its name, the substitution naming its function, and its TimeoutSeconds."""
    found = []
    for name, state in states.items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            function = state["Parameters"]["FunctionName"]
            placeholder = _PLACEHOLDER.match(function)
            assert placeholder, f"{name}: FunctionName {function!r} is not a substitution"
            assert "TimeoutSeconds" in state, f"{name} has no TimeoutSeconds"
            found.append((name, placeholder.group(1), state["TimeoutSeconds"]))
        for branch in state.get("Branches", []):
            found += _invoke_tasks(branch["States"])
        for processor in ("Iterator", "ItemProcessor"):
            if processor in state:
                found += _invoke_tasks(state[processor]["States"])
    return found


@pytest.mark.parametrize("definition", tools.STATE_MACHINES, ids=lambda path: path.name)
def test_every_invoked_function_times_out_with_its_task(
    template: dict[str, Any], definition: Any
) -> None:
    # Given the tasks of the definition and the functions the template substitutes for them
    tasks = _invoke_tasks(json.loads(definition.read_text(encoding="utf-8"))["States"])
    resources = template["Resources"]
    machines = [r for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine"]
    substitutions = {
        key: value
        for machine in machines
        for key, value in machine["Properties"].get("DefinitionSubstitutions", {}).items()
    }
    default = template["Globals"]["Function"]["Timeout"]
    assert tasks

    # When each task's function timeout is read (its own, else the Globals')
    mismatched = []
    for task, placeholder, task_timeout in tasks:
        function_name = substitutions[placeholder]["Fn::GetAtt"][0]
        timeout = resources[function_name]["Properties"].get("Timeout", default)
        if timeout != task_timeout:
            mismatched.append(f"{task}: {function_name} {timeout} s, task {task_timeout} s")

    # Then they are equal
    assert mismatched == []
