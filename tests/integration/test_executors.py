"""Both executors against the emulated Step Functions, and the sync contract via Stubber."""

from __future__ import annotations

import json

import boto3
from botocore.stub import Stubber

from concierge.adapters.executor import PollingExecutor, SyncExecutor
from concierge_cli.local.runtime import LocalRuntime

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:chat"


def test_sync_executor_reads_a_failed_status_from_a_200_response() -> None:
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
        result = SyncExecutor(client, ARN).run("r1", {"a": 1}, timeout_s=5)
    assert (result.status, result.error, result.output) == ("FAILED", "States.Runtime", None)


def test_sync_executor_parses_the_output_of_a_success() -> None:
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
        result = SyncExecutor(client, ARN).run("r2", {}, timeout_s=5)
    assert result.output == {"status": "answered"}


def test_polling_executor_runs_the_real_definition(runtime: LocalRuntime) -> None:
    executor = PollingExecutor(
        boto3.client("stepfunctions", region_name="us-east-1"), runtime.state_machine_arn
    )
    # An input missing its fields fails inside the chain and comes back as a structured failure.
    result = executor.run("bad-input", {"request_id": "r"}, timeout_s=10)
    assert result.status in {"SUCCEEDED", "FAILED"}
    if result.status == "SUCCEEDED":
        assert result.output is not None and result.output["status"] == "failed"
