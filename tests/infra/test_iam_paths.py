"""Least privilege by use: each role allows exactly what its code paths call.

moto does not check IAM, so a function can pass every integration test and be refused in AWS
(`DELETE /sessions/{id}` was, before this test). Here the real code paths run against moto,
every AWS call they make is recorded (`infra.aws_calls`), and each call's IAM action and
resource are evaluated against the role `template.yaml` defines for that parameter set, as
SAM translates it (`infra.iam_policies`):

- parameter sets: the template defaults, each samconfig environment (dev, staging, prod) and
  `options`: the defaults with every option the template grants for switched on (daily limits,
  the semantic tier with a Bedrock embedder, a Bedrock knowledge base instead of the index);
- holders and paths (`infra.function_paths`): the api function's chat, usage, feedback,
  session and user erasure and cache-flush routes; the semantic function's lookup and
  remember; the retrieve function loading its index from S3 (or searching the knowledge base);
  classify and condense reading the categories they route by (the index, or categories.json);
  the state machine's direct tasks, read from the ASL; the operator's CLI commands (erasure
  and flush, and the feedback report), under the policies docs/operations.md gives.

A call no grant allows fails, naming the holder, the parameter set, the path, the action and
the resource. The reverse holds too: an action a role is granted that no path of any parameter
set uses fails, unless template.yaml says why next to the grant, in a comment starting

    # not used by the tested paths: <why the role needs it all the same>

on the grant's line or directly above it (for an action listed under `Action:`, on or above
that `Action:` line; for a SAM policy template, on or above its `- Name:` line). An annotated
grant that a path does use fails as well: the comment would be stale.

Why moto's policy evaluator rather than its IAM enforcement: enforcement checks DynamoDB and
Step Functions calls against Resource "*" (moto passes no resource for them), so it could not
tell a grant on the right table from one on the wrong table or index; and it cannot see calls
moto does not serve (StartSyncExecution, Bedrock), which are stubbed here. Evaluating the
recorded ARNs with the evaluator moto's enforcement uses checks the exact resource of every
call, stubbed or not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from concierge.knowledge import IndexFile
from infra.aws_calls import Call, Recorded, iam_requests
from infra.function_paths import OPERATOR, run_cli_paths, run_function_paths, run_report_paths
from infra.iam_policies import Grant, GrantLines, Stack, allowing, policy_grants, translate_roles
from infra.test_iam import ACCOUNT, REGION
from infra.tools import ENVIRONMENTS, REPO_ROOT, TEMPLATE

FUNCTIONS = (
    "ApiFunction",
    "SemanticFunction",
    "RetrieveFunction",
    "ClassifyFunction",
    "CondenseFunction",
)
STATE_MACHINE = "ChatStateMachine"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
OPERATOR_SECTION = (
    "## Operator permissions for `concierge history delete`, `user delete` and `cache flush`"
)
REPORT_SECTION = "## Operator permissions for `concierge feedback report`"
# The environment whose stack `concierge feedback report --env` reads in the report's path.
REPORT_ENV = "dev"
# Every option the template grants for, switched on (no environment uses the last three yet).
OPTIONS = {
    "DailyTokenLimit": "200000",
    "DailyUsdLimit": "5",
    "SemanticCache": "on",
    "EmbeddingModelId": "amazon.titan-embed-text-v2:0",
    "KnowledgeBaseId": "KBTEST1234",
}
PARAMETER_SETS = ("defaults", *ENVIRONMENTS, "options")


@dataclass(frozen=True)
class Denied:
    holder: str
    parameter_set: str
    path: str
    action: str
    resource: str

    def __str__(self) -> str:
        return (
            f"{self.holder} ({self.parameter_set}), {self.path}: {self.action} on "
            f"{self.resource} is not allowed by its policy"
        )


@dataclass(frozen=True)
class Run:
    """One parameter set's stack and the calls its paths made."""

    name: str
    stack: Stack
    calls: list[Recorded]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def roles() -> dict[str, dict[str, Any]]:
    """The stack's IAM roles as SAM's translator makes them (once per session)."""
    return translate_roles()


@pytest.fixture(scope="module")
def runs(
    template: dict[str, Any],
    roles: dict[str, dict[str, Any]],
    env_parameters: dict[str, dict[str, str]],
    sample_index: tuple[Path, IndexFile],
) -> dict[str, Run]:
    """Every function path run once per parameter set."""
    index = sample_index[0].read_bytes()
    sets = {
        "defaults": {},
        **{env: env_parameters[env] for env in ENVIRONMENTS},
        "options": OPTIONS,
    }
    result = {}
    for name, parameters in sets.items():
        stack = Stack(template, roles, parameters, region=REGION, account=ACCOUNT)
        result[name] = Run(name, stack, run_function_paths(stack, index))
    return result


@pytest.fixture(scope="module")
def template_lines() -> GrantLines:
    return GrantLines(TEMPLATE.read_text(encoding="utf-8"))


# -- evaluation ---------------------------------------------------------------------------------
def evaluate(
    calls: Iterable[Recorded], grants: dict[str, list[Grant]], parameter_set: str
) -> tuple[list[Denied], set[Grant]]:
    """The calls no grant of their holder allows, and the grants some call used."""
    denied: dict[Denied, None] = {}  # in the order the paths ran, once each
    used: set[Grant] = set()
    for recorded in calls:
        for action, resource in iam_requests(recorded.call, REGION, ACCOUNT):
            allowed = allowing(grants[recorded.holder], action, resource)
            if not allowed:
                refused = Denied(recorded.holder, parameter_set, recorded.path, action, resource)
                denied[refused] = None
            used.update(allowed)
    return list(denied), used


def state_machine_tasks(stack: Stack) -> Iterator[Recorded]:
    """Each direct task of the state machine's definition as the call the service makes for
    it with the role (a DynamoDB operation on its `${…TableName}`, a Lambda invoke)."""
    properties = stack.template["Resources"][STATE_MACHINE]["Properties"]
    text = (REPO_ROOT / properties["DefinitionUri"]).read_text(encoding="utf-8")
    for name, value in stack.definition_substitutions(STATE_MACHINE).items():
        text = text.replace("${" + name + "}", value)
    for state_name, state in _task_states(json.loads(text)):
        resource = state["Resource"]
        arguments = state.get("Parameters") or state.get("Arguments") or {}
        dynamodb = re.fullmatch(r"arn:aws:states:::(?:aws-sdk:)?dynamodb:(\w+)", resource)
        if dynamodb:
            assert "TableName" in arguments, f"{state_name}: a table the test cannot read"
            operation = dynamodb.group(1)[0].upper() + dynamodb.group(1)[1:]
            params = {k: arguments[k] for k in ("TableName", "IndexName") if k in arguments}
            call = Call("dynamodb", "dynamodb", operation, params)
        elif re.fullmatch(r"arn:aws:states:::lambda:invoke(\.waitForTaskToken)?", resource):
            assert "FunctionName" in arguments, f"{state_name}: a function the test cannot read"
            call = Call(
                "lambda", "lambda", "InvokeFunction", {"FunctionName": arguments["FunctionName"]}
            )
        else:
            raise AssertionError(f"{state_name}: which IAM action is the task {resource}?")
        yield Recorded(STATE_MACHINE, state_name, call)


def _task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        if state.get("Type") == "Task":
            yield name, state
        for branch in state.get("Branches", []):
            yield from _task_states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _task_states(state[key])


def operator_policy(
    stack: Stack, heading: str = OPERATOR_SECTION, stack_name: str = ""
) -> dict[str, Any]:
    """The policy a section of docs/operations.md gives the operator, its placeholders filled
    in (`<StackName>`: the environment's stack)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    assert heading in text, f"docs/operations.md has no section {heading!r}"
    section = text.split(heading, 1)[1]
    section = re.split(r"^#{1,6} ", section, maxsplit=1, flags=re.M)[0]
    blocks = re.findall(r"^```json\n(.*?)^```", section, flags=re.M | re.S)
    assert len(blocks) == 1, f"the operator section has {len(blocks)} JSON blocks, not one"
    filled = blocks[0]
    for placeholder, value in {
        "<region>": stack.region,
        "<account>": stack.account,
        "<HistoryTableName>": stack.name("HistoryTable"),
        "<CacheTableName>": stack.name("CacheTable"),
        "<BudgetTableName>": stack.name("BudgetTable"),
        "<FeedbackTableName>": stack.name("FeedbackTable"),
        "<StackName>": stack_name,
    }.items():
        filled = filled.replace(placeholder, value)
    assert "<" not in filled, f"an unknown placeholder in the operator policy: {filled}"
    policy: dict[str, Any] = json.loads(filled)
    return policy


def grants_of(stack: Stack) -> dict[str, list[Grant]]:
    return {holder: stack.grants(holder) for holder in (*FUNCTIONS, STATE_MACHINE)}


# -- tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("parameter_set", PARAMETER_SETS)
def test_each_function_path_is_allowed_by_its_role(
    runs: dict[str, Run], parameter_set: str
) -> None:
    # Given the calls each function's paths made for this parameter set
    run = runs[parameter_set]
    made = {recorded.holder for recorded in run.calls}

    # When each call is evaluated against its function's role, as the template defines it
    denied, _ = evaluate(run.calls, grants_of(run.stack), run.name)

    # Then every function made calls, and every call is allowed
    assert made == set(FUNCTIONS)
    assert denied == [], "\n".join(str(d) for d in denied)


@pytest.mark.parametrize("parameter_set", PARAMETER_SETS)
def test_the_state_machine_role_allows_every_task_of_the_definition(
    runs: dict[str, Run], parameter_set: str
) -> None:
    # Given the direct tasks of the definition, with this parameter set's substitutions
    stack = runs[parameter_set].stack
    tasks = list(state_machine_tasks(stack))

    # When each task's call is evaluated against the state machine's role
    denied, _ = evaluate(tasks, grants_of(stack), parameter_set)

    # Then there are DynamoDB tasks on each table, and the role allows every task
    tables = {call.call.params.get("TableName") for call in tasks}
    assert {stack.name(t) for t in ("CacheTable", "HistoryTable", "BudgetTable")} <= tables
    assert denied == [], "\n".join(str(d) for d in denied)


def test_every_granted_action_is_used_by_a_path_or_says_why(
    runs: dict[str, Run], template_lines: GrantLines
) -> None:
    # Given every grant of the functions and the state machine, over all parameter sets
    granted: set[Grant] = set()
    used: set[Grant] = set()
    for run in runs.values():
        grants = grants_of(run.stack)
        granted.update(grant for holder in grants.values() for grant in holder)

        # When the paths' calls and the state machine's tasks are evaluated
        calls = [*run.calls, *state_machine_tasks(run.stack)]
        used.update(evaluate(calls, grants, run.name)[1])

    # Then a grant no path uses is annotated with why it stays, and no used grant says otherwise
    unexplained = []
    stale = []
    for grant in sorted(granted, key=lambda g: (g.holder, g.origin, g.action, g.resource)):
        line = template_lines.find(grant)
        where = f"{grant.holder}: {grant.action} on {grant.resource} ({grant.origin}, template.yaml:{line.number})"
        if grant not in used and not line.annotated:
            unexplained.append(where)
        if grant in used and line.annotated:
            stale.append(where)
    assert unexplained == [], (
        "granted, but no tested path uses it — remove it, or say why next to it with "
        "'# not used by the tested paths: …':\n" + "\n".join(unexplained)
    )
    assert stale == [], "annotated as not used, but a path uses it:\n" + "\n".join(stale)


def test_only_the_api_function_and_the_chain_touch_the_budget_table_and_only_as_they_use_it(
    runs: dict[str, Run],
) -> None:
    # Given the parameter set with daily limits on
    run = runs["options"]
    budget = run.stack.physical("BudgetTable", "Arn")
    grants = grants_of(run.stack)

    # When the grants on the budget table are compared with what the paths and tasks use
    on_budget = {g for holder in grants.values() for g in holder if g.resource.startswith(budget)}
    calls = [*run.calls, *state_machine_tasks(run.stack)]
    used = {g for g in evaluate(calls, grants, run.name)[1] if g.resource.startswith(budget)}

    # Then only those two roles may touch it, each with exactly the actions its code uses
    assert {g.holder for g in on_budget} == {"ApiFunction", STATE_MACHINE}
    assert on_budget == used
    assert {g.action for g in used if g.holder == STATE_MACHINE} == {"dynamodb:UpdateItem"}
    assert {g.action for g in used if g.holder == "ApiFunction"} == {
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    }


def test_the_cli_commands_run_under_the_operator_policy_of_the_docs(
    template: dict[str, Any], roles: dict[str, dict[str, Any]]
) -> None:
    # Given the operator policy of docs/operations.md, for the test stack's tables
    stack = Stack(template, roles, {}, region=REGION, account=ACCOUNT)
    grants = policy_grants(OPERATOR, operator_policy(stack))

    # When the admin commands run against the stack's tables and their calls are evaluated
    calls = run_cli_paths(stack)
    denied, used = evaluate(calls, {OPERATOR: grants}, "docs/operations.md")

    # Then every command's calls are allowed, and the policy grants nothing they do not use
    assert {recorded.path for recorded in calls} == {
        "concierge history delete",
        "concierge user delete",
        "concierge cache flush --kb-version",
        "concierge cache flush --all",
    }
    assert denied == [], "\n".join(str(d) for d in denied)
    assert set(grants) - used == set()


def test_only_the_api_function_touches_the_feedback_table_and_only_as_it_uses_it(
    runs: dict[str, Run],
) -> None:
    for run in runs.values():
        # Given a parameter set's grants on the feedback table
        feedback = run.stack.physical("FeedbackTable", "Arn")
        grants = grants_of(run.stack)
        on_feedback = {
            g for holder in grants.values() for g in holder if g.resource.startswith(feedback)
        }

        # When they are compared with what the paths and the tasks use
        calls = [*run.calls, *state_machine_tasks(run.stack)]
        used = {g for g in evaluate(calls, grants, run.name)[1] if g.resource.startswith(feedback)}

        # Then only the api function may touch it: the conditional put of a rating, and the
        # query and batch delete of erasure; never a read of someone's ratings by key, a scan
        # or an update
        assert on_feedback == used, run.name
        assert {g.holder for g in used} == {"ApiFunction"}, run.name
        assert {g.action for g in used} == {
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:BatchWriteItem",
        }, run.name


def test_the_feedback_report_runs_under_its_policy_of_the_docs(
    template: dict[str, Any],
    roles: dict[str, dict[str, Any]],
    samconfig: dict[str, Any],
) -> None:
    # Given the report's policy of docs/operations.md, for the test stack's table and the
    # stack of the environment the report is asked of
    stack_name = samconfig[REPORT_ENV]["global"]["parameters"]["stack_name"]
    stack = Stack(template, roles, {}, region=REGION, account=ACCOUNT)
    grants = policy_grants(OPERATOR, operator_policy(stack, REPORT_SECTION, stack_name))

    # When the report runs of the table named, then of the environment's stack
    calls = run_report_paths(stack, REPORT_ENV, stack_name)
    denied, used = evaluate(calls, {OPERATOR: grants}, "docs/operations.md")

    # Then each call is allowed, and the policy grants nothing they do not use
    assert {recorded.path for recorded in calls} == {
        "concierge feedback report --feedback-table",
        "concierge feedback report --env",
    }
    assert denied == [], "\n".join(str(d) for d in denied)
    assert set(grants) - used == set()


def test_the_check_names_what_the_api_role_lacked_when_delete_sessions_was_refused(
    runs: dict[str, Run],
) -> None:
    # Given the api function's policy before erasure was fixed: start the chain, query and
    # batch-delete the history, delete cache items
    stack = runs["dev"].stack
    before = policy_grants(
        "ApiFunction",
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "states:StartSyncExecution",
                    "Resource": stack.physical("ChatStateMachine"),
                },
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:Query", "dynamodb:BatchWriteItem"],
                    "Resource": stack.physical("HistoryTable", "Arn"),
                },
                {
                    "Effect": "Allow",
                    "Action": "dynamodb:DeleteItem",
                    "Resource": stack.physical("CacheTable", "Arn"),
                },
            ]
        },
    )

    # When today's api paths are evaluated against it
    calls = [c for c in runs["dev"].calls if c.holder == "ApiFunction"]
    denied, _ = evaluate(calls, {"ApiFunction": before}, "dev")

    # Then the session's deletion is refused for finding its cache entries, and the message
    # names the holder, the parameter set, the path, the action and the resource
    cache = stack.physical("CacheTable", "Arn")
    first = next(d for d in denied if d.path == "DELETE /sessions/{session_id}")
    assert str(first) == (
        f"ApiFunction (dev), DELETE /sessions/{{session_id}}: dynamodb:Query on "
        f"{cache}/index/ByProducer is not allowed by its policy"
    )
    assert {(d.path, d.action) for d in denied} >= {
        ("DELETE /sessions/{session_id}", "dynamodb:UpdateItem"),
        ("POST /admin/cache/flush (all)", "dynamodb:Scan"),
        ("DELETE /users/{user_id}", "dynamodb:BatchWriteItem"),
    }
