"""Both executors against the emulated Step Functions, and the sync contract via Stubber."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber

from concierge.adapters.executor import PollingExecutor, SyncExecutor
from concierge_cli.local.runtime import LocalRuntime

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:chat"


def test_sync_executor_reads_a_failed_status_from_a_200_response() -> None:
    # Given StartSyncExecution answering 200 for an execution that failed
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_response(
            "start_sync_execution",
            {
                "executionArn": f"{ARN}:r1",
                "startDate": "2026-01-01T00:00:00Z",
                "stopDate": "2026-01-01T00:00:01Z",
                "status": "FAILED",
                "error": "States.Runtime",
                "cause": "boom",
            },
            {"stateMachineArn": ARN, "name": "r1", "input": json.dumps({"a": 1})},
        )

        # When the sync executor runs an input
        result = SyncExecutor(client, ARN).run("r1", {"a": 1}, timeout_s=5)

    # Then the result is the failure, with its error and without output
    assert (result.status, result.error, result.output) == ("FAILED", "States.Runtime", None)


def test_sync_executor_parses_the_output_of_a_success() -> None:
    # Given StartSyncExecution answering with the JSON output of a successful execution
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        stubber.add_response(
            "start_sync_execution",
            {
                "executionArn": f"{ARN}:r2",
                "startDate": "2026-01-01T00:00:00Z",
                "stopDate": "2026-01-01T00:00:01Z",
                "status": "SUCCEEDED",
                "output": '{"status": "answered"}',
            },
        )

        # When the sync executor runs an input
        result = SyncExecutor(client, ARN).run("r2", {}, timeout_s=5)

    # Then the result carries the parsed output
    assert result.output == {"status": "answered"}


def test_polling_executor_runs_the_real_definition(runtime: LocalRuntime) -> None:
    # Given a polling executor on the emulated state machine
    executor = PollingExecutor(
        boto3.client("stepfunctions", region_name="us-east-1"), runtime.state_machine_arn
    )

    # When it runs an input missing its fields
    result = executor.run("bad-input", {"request_id": "r"}, timeout_s=10)

    # Then the input fails inside the chain, whose last state turns the failure into a
    # structured result of a succeeded execution
    assert result.status == "SUCCEEDED"
    assert result.error is None
    assert result.output is not None and result.output["status"] == "failed"
    assert result.output["error"] == "States.Runtime"
