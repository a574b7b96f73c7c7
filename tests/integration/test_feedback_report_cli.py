"""`concierge feedback report` over stored ratings: the local run's tables (as `concierge
serve` keeps them), a table named by `--feedback-table`, and the table of an environment's
stack (`--env`: its stack output, read with CloudFormation, answered here by a Stubber)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from local_api import answer, call
from moto import mock_aws

from concierge import wiring
from concierge.adapters.dynamodb.formats import FEEDBACK
from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.template import load_template, table_definitions
from concierge_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = (
    "What do you sell?",
    "How long is the warranty on backpacks?",
    "Do you ship to Austria?",
)


def concierge(*argv: str) -> int:
    return main(["--root", str(REPO_ROOT), *argv])


@pytest.fixture
def rated_store(tmp_path: Path, sample_index: tuple[Path, IndexFile]) -> Path:
    """A local run's store: three users asked three questions each and rated every answer, the
    first of each user's down."""
    store = tmp_path / "tables.sqlite3"
    index_path, index = sample_index
    with LocalRuntime(REPO_ROOT, index_path, index.kb_version, state_path=store) as runtime:
        for user in ("alice", "bob", "carol"):
            for number, question in enumerate(QUESTIONS):
                answered = answer(runtime, question, f"{user}-s", user=user)
                rating = "down" if number == 0 else "up"
                status, _ = call(
                    runtime,
                    "POST",
                    "/feedback",
                    {"request_id": answered["request_id"], "rating": rating},
                    user=user,
                )
                assert status == 201
    return store


def test_the_report_reads_the_local_runs_ratings(
    rated_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local run's nine ratings (six up), all served by the local run's one variant
    # When the report is printed as JSON
    code = concierge("feedback", "report", "--state", str(rated_store), "--json")

    # Then it counts them for that variant, with the interval of 6 of 9
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["ratings"], document["baseline"]) == (9, "default")
    (row,) = document["variants"]
    assert (row["variant"], row["ratings"], row["up"], row["down"]) == ("default", 9, 6, 3)
    assert row["interval_95"] == [0.3542, 0.8794]
    assert {r["language"] for r in document["by_language"]} == {"en"}
    assert document["table"] == "concierge-local-FeedbackTable"


def test_since_keeps_the_ratings_made_on_or_after_a_day(
    rated_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given ratings made today (UTC)
    today = datetime.now(UTC).date().isoformat()

    # When the report is asked since today, and since a day to come
    assert concierge("feedback", "report", "--state", str(rated_store), "--since", today) == 0
    since_today = capsys.readouterr().out
    later = "2999-01-01"
    assert concierge("feedback", "report", "--state", str(rated_store), "--since", later) == 0
    since_later = capsys.readouterr().out

    # Then today's are all there, in the text report, and none is later
    assert since_today.splitlines()[0].endswith(": 9 ratings")
    assert f"since {today}" in since_today
    assert "default" in since_today
    assert since_later.splitlines()[0].endswith(": 0 ratings")


def test_without_a_local_run_the_report_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the report is asked of a store nothing was asked in
    code = concierge("feedback", "report", "--state", str(tmp_path / "none.sqlite3"))

    # Then it says so
    assert code == 2
    assert "nothing has been asked locally yet" in capsys.readouterr().err


# -- a deployed stack's table ---------------------------------------------------------------------
@pytest.fixture
def stack_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """A feedback table as a stack would have it, in dev's region, with four ratings of two
    variants; clients come from the composition root."""
    monkeypatch.delenv("CONCIERGE_FEEDBACK_TABLE", raising=False)
    definition = table_definitions(load_template(REPO_ROOT / "template.yaml"))["FeedbackTable"]
    name = "concierge-dev-FeedbackTable-1Q2W3E4R5T6Y"
    with mock_aws():
        wiring.reset()
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(TableName=name, **definition)
        now = int(datetime.now(UTC).timestamp())
        for number, (variant, rating) in enumerate(
            [("default", "up"), ("default", "up"), ("default", "down"), ("concise", "down")]
        ):
            client.put_item(
                TableName=name,
                Item=FEEDBACK.item(
                    user_id=f"user-{number}",
                    request_id=f"r-{number}",
                    session_id="s",
                    rating=rating,
                    comment="never shown",
                    variant=variant,
                    category="support",
                    language="de",
                    created_at=now,
                    expires_at=now + 86_400,
                ),
            )
        yield client, name
        wiring.reset()


def test_the_report_reads_a_named_table(
    stack_table: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stack's feedback table, named, in the configured region
    _, name = stack_table
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    wiring.reset()

    # When the report is printed as text
    code = concierge("feedback", "report", "--feedback-table", name)

    # Then both variants are there, against the most rated one, and no comment is shown
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == f"Feedback in {name}: 4 ratings"
    assert "concise" in out and "(Fisher), not significant" in out
    assert "never shown" not in out


def test_env_reads_the_table_its_stack_names_in_its_region(
    stack_table: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given dev's stack (samconfig.toml: concierge-dev in eu-west-1), whose outputs name the
    # table, and a shell configured for another region
    _, name = stack_table
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    wiring.reset()
    cloudformation = wiring.aws_client("cloudformation", region="eu-west-1")
    stubber = Stubber(cloudformation)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "concierge-dev",
                    "CreationTime": datetime.now(UTC),
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": "HistoryTableName", "OutputValue": "other"},
                        {"OutputKey": "FeedbackTableName", "OutputValue": name},
                    ],
                }
            ]
        },
        {"StackName": "concierge-dev"},
    )

    # When the report of dev is asked
    with stubber:
        code = concierge("feedback", "report", "--env", "dev", "--json")

    # Then the stack was read in its region, and its table's ratings reported
    stubber.assert_no_pending_responses()
    assert cloudformation.meta.region_name == "eu-west-1"
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["table"], document["ratings"]) == (name, 4)
    assert [(r["variant"], r["up"]) for r in document["variants"]] == [
        ("default", 2),
        ("concise", 0),
    ]


def test_env_without_the_output_fails_and_says_so(
    stack_table: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given dev's stack deployed before the feedback table existed
    wiring.reset()
    stubber = Stubber(wiring.aws_client("cloudformation", region="eu-west-1"))
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "concierge-dev",
                    "CreationTime": datetime.now(UTC),
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [],
                }
            ]
        },
    )

    # When the report of dev is asked
    with stubber:
        code = concierge("feedback", "report", "--env", "dev")

    # Then it fails, naming the output to deploy
    assert code == 1
    assert "no output FeedbackTableName" in capsys.readouterr().err
