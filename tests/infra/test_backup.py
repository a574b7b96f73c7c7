"""Backup and recovery: what outlives a deleted or replaced stack, prod's backup plan, and the
termination protection `make deploy ENV=prod` turns on (docs/operations.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra import tools
from infra.cfn_yaml import Evaluator
from infra.tools import ENVIRONMENTS

BACKUP = ("BackupVault", "BackupPlan", "BackupTables", "BackupRole")
BACKED_UP = {"<HistoryTable.Arn>", "<FeedbackTable.Arn>", "<BudgetTable.Arn>"}


def test_tables_and_the_knowledge_bucket_outlive_deletion_and_replacement(
    template: dict[str, Any],
) -> None:
    # Given every table (users' data) and the knowledge bucket (the published documents)
    kept = {
        name: body
        for name, body in template["Resources"].items()
        if body["Type"] == "AWS::DynamoDB::Table" or name == "KnowledgeBucket"
    }

    # When their deletion and replacement policies are read
    policies = {
        name: (body.get("DeletionPolicy"), body.get("UpdateReplacePolicy"))
        for name, body in kept.items()
    }

    # Then they are all retained both ways
    assert {"CacheTable", "HistoryTable", "BudgetTable", "FeedbackTable", "KnowledgeBucket"} <= set(
        kept
    )
    assert all(policy == ("Retain", "Retain") for policy in policies.values()), policies


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_prod_backs_the_tables_up(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given an environment's parameters
    evaluator = Evaluator(template, env_parameters[env], strict=True)

    # When the backup resources it creates are listed
    created = [name for name in BACKUP if evaluator.creates(name)]

    # Then prod has the vault, the plan, its selection and its role, and no other has any
    assert created == (list(BACKUP) if env == "prod" else [])


def test_prods_plan_copies_the_users_tables_on_schedule_into_a_kept_encrypted_vault(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]]
) -> None:
    # Given prod's parameters with a schedule and a retention of its own
    parameters = {
        **env_parameters["prod"],
        "BackupSchedule": "cron(30 1 * * ? *)",
        "BackupRetentionDays": "14",
    }
    evaluator = Evaluator(template, parameters, strict=True)
    resources = template["Resources"]

    # When the plan, its selection, the vault and the role are resolved
    rule = evaluator.resolve(resources["BackupPlan"]["Properties"])["BackupPlan"]["BackupPlanRule"]
    selection = evaluator.resolve(resources["BackupTables"]["Properties"])["BackupSelection"]
    vault = evaluator.resolve(resources["BackupVault"]["Properties"])
    trust = resources["BackupRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]

    # Then one rule runs on the schedule into the vault and keeps each copy as long as asked
    assert len(rule) == 1
    assert rule[0]["ScheduleExpression"] == "cron(30 1 * * ? *)"
    assert rule[0]["TargetBackupVault"] == "<BackupVault>"
    assert rule[0]["Lifecycle"] == {"DeleteAfterDays": "14"}
    # And it copies the history, the ratings and the budgets (not the cache, which refills)
    assert set(selection["Resources"]) == BACKED_UP
    assert selection["IamRoleArn"] == "<BackupRole.Arn>"
    # And the vault is encrypted with the stack's key and kept with the stack
    assert vault["EncryptionKeyArn"] == "<DataKey.Arn>"
    assert resources["BackupVault"]["DeletionPolicy"] == "Retain"
    # And only AWS Backup may assume the role
    assert [s["Principal"] for s in trust] == [{"Service": "backup.amazonaws.com"}]


def test_backup_parameters_refuse_what_aws_backup_would(template: dict[str, Any]) -> None:
    # Given the backup parameters
    schedule = template["Parameters"]["BackupSchedule"]
    retention = template["Parameters"]["BackupRetentionDays"]

    # When a cron expression and a rate expression are matched against the schedule's pattern
    cron = re.fullmatch(schedule["AllowedPattern"], "cron(0 3 * * ? *)")
    rate = re.fullmatch(schedule["AllowedPattern"], "rate(1 day)")

    # Then only the cron expression is accepted, and a copy is kept at least a day
    assert cron and not rate
    assert re.fullmatch(schedule["AllowedPattern"], schedule["Default"])
    assert retention["MinValue"] >= 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_make_deploy_protects_prods_stack_from_deletion_and_only_prods(env: str) -> None:
    # Given make's dry run of a deploy to the environment (nothing is executed)
    result = tools.run(["make", "-n", "deploy", f"ENV={env}"])

    # When the commands it would run are read
    commands = result.stdout.splitlines()
    deploy = [i for i, line in enumerate(commands) if "sam deploy --config-env" in line]
    protect = [i for i, line in enumerate(commands) if "termination.py" in line]

    # Then prod's turns termination protection on after sam deploy, and the others' do not
    assert result.returncode == 0, tools.describe(result)
    assert len(deploy) == 1
    if env == "prod":
        assert [commands[i].split()[-2:] for i in protect] == [
            ["cli/concierge_cli/termination.py", "prod"]
        ]
        assert protect[0] > deploy[0]
    else:
        assert protect == []
