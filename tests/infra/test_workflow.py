"""The GitHub Actions pipeline (.github/workflows/pipeline.yml, docs/deploy.md "CI/CD").

Every step that does project work is a target of the Makefile, so a job can be replayed from a
shell; pull requests run `make test`; main goes build -> dev -> staging -> approval -> prod; AWS is
reached only through each environment's OIDC role; and actionlint accepts the files.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import tools

GITHUB = tools.REPO_ROOT / ".github"
WORKFLOWS = sorted([*GITHUB.glob("workflows/*.yml"), *GITHUB.glob("workflows/*.yaml")])
LOCAL_ACTIONS = sorted(
    [*GITHUB.glob("actions/*/action.yml"), *GITHUB.glob("actions/*/action.yaml")]
)
PIPELINE = GITHUB / "workflows" / "pipeline.yml"
MAKEFILE = tools.REPO_ROOT / "Makefile"

CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
MAIN_ONLY = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
# The pipeline on main, stage by stage: a make target and the environment it works on.
STAGES = (
    ("build", None),
    ("deploy", "dev"),
    ("eval", "dev"),
    ("deploy", "staging"),
    ("eval", "staging"),
    ("deploy", "prod"),
)

# A rule's targets at the start of a line (`test: …`, `a b: …`), not a variable (`X := …`).
_RULE = re.compile(r"^([A-Za-z][\w.-]*(?:[ \t]+[A-Za-z][\w.-]*)*)[ \t]*:(?!=)", re.M)
_SHELL_PUNCTUATION = set("();<>|&")


@dataclass
class MakeCall:
    """One `make` command line of a `run:` script: its targets and its `NAME=value` variables."""

    line: str
    targets: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> str | None:
        return self.variables.get("ENV")

    def touches_aws(self) -> bool:
        # `make eval` alone is the offline evaluation; with ENV it calls a deployed stack.
        return "deploy" in self.targets or ("eval" in self.targets and self.env is not None)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The workflow's `on:` (YAML 1.1 reads the bare key `on` as the boolean true)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), f"unexpected `on:` {on!r}"
    return on


def makefile_targets() -> set[str]:
    return {
        name
        for match in _RULE.finditer(MAKEFILE.read_text(encoding="utf-8"))
        for name in match.group(1).split()
    }


def makefile_prerequisites(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}[ \t]*:(?!=)(.*)$", MAKEFILE.read_text(), re.M)
    assert match, f"the Makefile has no `{target}` rule"
    return match.group(1).split()


def make_calls(script: str) -> list[MakeCall]:
    """The make commands of a shell script, read with the shell's own word splitting."""
    calls = []
    for line in script.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for index, word in enumerate(words):
            if word != "make" and not word.endswith("/make"):
                continue
            call = MakeCall(line=line.strip())
            for argument in words[index + 1 :]:
                if set(argument) <= _SHELL_PUNCTUATION:
                    break
                if argument.startswith("-"):
                    continue
                if "=" in argument:
                    name, value = argument.split("=", 1)
                    call.variables[name] = value
                else:
                    call.targets.append(argument)
            calls.append(call)
    return calls


def steps_of(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, step) for each step of a workflow's jobs or of a composite action."""
    document = load(path)
    where = path.relative_to(tools.REPO_ROOT)
    if "jobs" in document:
        for job_id, job in document["jobs"].items():
            for number, step in enumerate(job.get("steps", []), 1):
                yield f"{where}: {job_id} step {number}", step
    else:
        for number, step in enumerate(document.get("runs", {}).get("steps", []), 1):
            yield f"{where}: step {number}", step


def job_calls(job: dict[str, Any]) -> list[MakeCall]:
    return [call for step in job.get("steps", []) for call in make_calls(step.get("run", ""))]


def environment_of(job: dict[str, Any]) -> str | None:
    environment = job.get("environment")
    if isinstance(environment, dict):
        name = environment.get("name")
        return str(name) if name is not None else None
    return environment if environment is None else str(environment)


def aws_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if CONFIGURE_AWS in str(step.get("uses", ""))]


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    assert PIPELINE.is_file(), f"{PIPELINE.relative_to(tools.REPO_ROOT)} is missing"
    return load(PIPELINE)


def test_every_run_step_calls_a_make_target_the_makefile_defines() -> None:
    # Given every `run:` step of the workflows and of the local actions, and the Makefile's rules
    run_steps = [
        (where, step["run"])
        for path in [*WORKFLOWS, *LOCAL_ACTIONS]
        for where, step in steps_of(path)
        if "run" in step
    ]
    targets = makefile_targets()

    # When the make commands of each step are read
    calls = {where: make_calls(script) for where, script in run_steps}

    # Then each step's work is a make target (shell of its own belongs in the Makefile, where a
    # developer runs the same thing), and each target it names exists
    assert run_steps, "the workflows run nothing"
    assert [where for where, found in calls.items() if not found] == []
    assert [
        (where, call.line)
        for where, found in calls.items()
        for call in found
        if not call.targets or not set(call.targets) <= targets
    ] == [], "steps call make without a target, or with one the Makefile does not define"


def test_pull_requests_run_make_test(pipeline: dict[str, Any]) -> None:
    # Given the pipeline's triggers and the jobs that are not limited to pushes on main
    on = triggers(pipeline)
    jobs = pipeline["jobs"]
    for_pull_requests = {
        job_id
        for job_id, job in jobs.items()
        if "github.event_name == 'push'" not in job.get("if", "")
    }

    # When the jobs among them that run `make test` are looked for
    testing = [
        job_id
        for job_id in for_pull_requests
        if any(call.targets == ["test"] for call in job_calls(jobs[job_id]))
    ]

    # Then a pull request runs `make test`, in a job that waits for no job it would skip
    assert "pull_request" in on
    assert testing, "no job a pull request runs calls `make test`"
    for job_id in testing:
        needs = jobs[job_id].get("needs", [])
        assert set([needs] if isinstance(needs, str) else needs) <= for_pull_requests


def test_main_goes_build_dev_staging_then_prod_after_approval(pipeline: dict[str, Any]) -> None:
    # Given the jobs of the pipeline and the stage each one's make calls perform
    jobs = pipeline["jobs"]
    stage_jobs: dict[tuple[str, str | None], list[str]] = {stage: [] for stage in STAGES}
    for job_id, job in jobs.items():
        for call in job_calls(job):
            for target in call.targets:
                if (target, call.env) in stage_jobs:
                    stage_jobs[(target, call.env)].append(job_id)

    # When each stage's job is matched with the one before it
    assert {stage: len(found) for stage, found in stage_jobs.items()} == dict.fromkeys(STAGES, 1)
    order = [stage_jobs[stage][0] for stage in STAGES]
    pairs = list(itertools.pairwise(order))

    # Then pushes to main start it, every stage needs the one before (a failure stops the line:
    # nothing reaches staging that dev's evaluation failed, nor prod that staging's did), every
    # stage runs only for a push to main, and prod waits for the approval of its environment
    assert triggers(pipeline)["push"] == {"branches": ["main"]}
    for before, after in pairs:
        needs = jobs[after].get("needs", [])
        assert before in ([needs] if isinstance(needs, str) else needs), (
            f"{after} must need {before}"
        )
    for job_id in order:
        assert MAIN_ONLY in jobs[job_id].get("if", ""), f"{job_id} must run for pushes to main only"
    assert environment_of(jobs[order[-1]]) == "prod", (
        "prod's deploy must wait for `environment: prod`"
    )


def test_jobs_that_touch_aws_assume_their_environments_role_through_oidc(
    pipeline: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    # Given the pipeline's jobs, split by whether they deploy or evaluate a stack
    jobs = pipeline["jobs"]
    touching = {
        job_id for job_id, job in jobs.items() if any(c.touches_aws() for c in job_calls(job))
    }
    others = set(jobs) - touching

    # When their permissions, environments and credentials steps are read
    failures = []
    for job_id in sorted(touching):
        job = jobs[job_id]
        envs = {call.env for call in job_calls(job) if call.touches_aws()}
        credentials = aws_steps(job)
        if job.get("permissions", {}).get("id-token") != "write":
            failures.append(f"{job_id}: no `id-token: write`, so no OIDC token")
        env = environment_of(job)
        if env is None or envs != {env}:
            failures.append(f"{job_id}: works on {envs} in environment {env!r}")
            continue
        if len(credentials) != 1:
            failures.append(f"{job_id}: {len(credentials)} {CONFIGURE_AWS} steps")
            continue
        given = credentials[0].get("with", {})
        if not re.fullmatch(r"\$\{\{\s*vars\.[A-Z0-9_]+\s*\}\}", str(given.get("role-to-assume"))):
            failures.append(f"{job_id}: role-to-assume is not a repository or environment variable")
        region = samconfig[env]["global"]["parameters"]["region"]
        if given.get("aws-region") != region:
            failures.append(f"{job_id}: aws-region {given.get('aws-region')} is not {region}")
        if job["steps"].index(credentials[0]) > min(
            number for number, step in enumerate(job["steps"]) if "run" in step
        ):
            failures.append(f"{job_id}: credentials come after the work")

    # Then each gets its environment's role (the OIDC subject and the variable are that
    # environment's, in its stack's region) before its work, and no other job can mint a token
    assert touching, "no job deploys or evaluates a stack"
    assert failures == []
    assert pipeline.get("permissions", {}).get("id-token") != "write"
    assert [
        job_id for job_id in sorted(others) if jobs[job_id].get("permissions", {}).get("id-token")
    ] == []
    assert [job_id for job_id in sorted(others) if aws_steps(jobs[job_id])] == []


def test_no_aws_access_key_is_stored_or_passed() -> None:
    # Given every workflow and local action, as written and as parsed
    files = [*WORKFLOWS, *LOCAL_ACTIONS]
    texts = {path.name: path.read_text(encoding="utf-8") for path in files}
    credential_inputs = {
        key
        for path in files
        for _, step in steps_of(path)
        if CONFIGURE_AWS in str(step.get("uses", ""))
        for key in step.get("with", {})
    }

    # When static credentials are looked for: the action's key inputs, the SDK's key variables,
    # and secrets named after AWS
    key_variables = {
        name: re.findall(r"AWS_(?:ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)", text)
        for name, text in texts.items()
    }
    aws_secrets = {
        name: re.findall(r"secrets\.\w*AWS\w*", text, re.I) for name, text in texts.items()
    }

    # Then there are none: the credentials are the short-lived ones of the assumed role
    assert credential_inputs, f"no {CONFIGURE_AWS} step found"
    assert (
        credential_inputs & {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
        == set()
    )
    assert {name: found for name, found in key_variables.items() if found} == {}
    assert {name: found for name, found in aws_secrets.items() if found} == {}


def test_third_party_actions_are_pinned_to_a_commit_named_by_its_version() -> None:
    # Given every `uses:` line of the workflows and local actions
    lines = [
        (path.name, line.strip())
        for path in [*WORKFLOWS, *LOCAL_ACTIONS]
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(?:-\s+)?uses:", line)
    ]

    # When the references to actions outside the repository are read
    remote = [(name, line) for name, line in lines if not re.search(r"uses:\s*\./", line)]

    # Then each names a full commit (a tag can be moved) and, in a comment, the version it is
    assert remote
    assert [
        (name, line)
        for name, line in remote
        if not re.fullmatch(
            r"(?:-\s+)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(?:\.\d+)*", line
        )
    ] == []


def test_ci_deploys_answer_the_confirmation_and_pass_on_nothing_to_change(
    pipeline: dict[str, Any], samconfig: dict[str, Any]
) -> None:
    # Given each environment's deploy settings and the pipeline's deploy commands
    settings = {
        env: {**samconfig[env]["global"]["parameters"], **samconfig[env]["deploy"]["parameters"]}
        for env in tools.ENVIRONMENTS
    }
    deploys = [
        call
        for job in pipeline["jobs"].values()
        for call in job_calls(job)
        if "deploy" in call.targets
    ]

    # When the deploys of environments whose change sets samconfig has a person confirm are read
    confirmed = [call for call in deploys if settings[str(call.env)].get("confirm_changeset")]

    # Then those answer the prompt (without input, SAM CLI aborts the deploy), and no environment
    # fails a deploy with nothing to change (a push of documentation only must not stop the line)
    assert {call.env for call in deploys} == set(tools.ENVIRONMENTS)
    assert confirmed
    assert [call.line for call in confirmed if not re.search(r"<<<\s*['\"]?y\b", call.line)] == []
    assert {
        env: s.get("fail_on_empty_changeset", True) for env, s in settings.items()
    } == dict.fromkeys(tools.ENVIRONMENTS, False)


def test_make_test_and_make_validate_lint_the_workflows() -> None:
    # Given the Makefile's `workflows` target
    targets = makefile_targets()

    # When the prerequisites of `make test` and `make validate` are read
    prerequisites = {target: makefile_prerequisites(target) for target in ("test", "validate")}

    # Then both run it
    assert "workflows" in targets
    assert {target: "workflows" in found for target, found in prerequisites.items()} == {
        "test": True,
        "validate": True,
    }


def test_actionlint_accepts_the_workflows() -> None:
    # Given actionlint and ShellCheck of .venv (requirements/dev.txt), as `make workflows` runs them
    actionlint = tools.actionlint()
    shellcheck = tools.shellcheck()

    # When actionlint checks the workflows (syntax, expressions, `needs`, the local action's
    # inputs, and the `run:` scripts through ShellCheck)
    result = tools.run(
        [actionlint, f"-shellcheck={shellcheck}", "-pyflakes=", "-oneline", *WORKFLOWS]
    )

    # Then it reports nothing
    assert WORKFLOWS, "no .github/workflows/*.yml"
    assert result.returncode == 0, tools.describe(result)
