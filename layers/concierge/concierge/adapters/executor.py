"""Running the chain: Step Functions, synchronously (Express) or by polling (emulators)."""

from __future__ import annotations

import json
import time
from typing import Any, Literal, Protocol

from pydantic import BaseModel

ExecutionStatus = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


class ExecutionResult(BaseModel):
    status: ExecutionStatus
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


class ChainExecutor(Protocol):
    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult: ...


def _result(description: dict[str, Any]) -> ExecutionResult:
    output = description.get("output")
    return ExecutionResult(
        status=description["status"],
        output=json.loads(output) if output else None,
        error=description.get("error"),
        cause=description.get("cause"),
    )


class SyncExecutor:
    """StartSyncExecution on an Express state machine. It answers 200 even when the execution
    failed; the status in its body is what counts."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        response = self._client.start_sync_execution(
            stateMachineArn=self._arn, name=name, input=json.dumps(payload)
        )
        return _result(response)


class PollingExecutor:
    """StartExecution, then DescribeExecution until it ends — for runtimes without a sync start
    (the local emulator, Standard workflows)."""

    def __init__(self, client: Any, state_machine_arn: str, interval_s: float = 0.005) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._interval_s = interval_s

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        execution_arn = self._client.start_execution(
            stateMachineArn=self._arn, name=name, input=json.dumps(payload)
        )["executionArn"]
        deadline = time.monotonic() + timeout_s
        interval = self._interval_s
        while True:
            description = self._client.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return _result(description)
            if time.monotonic() >= deadline:
                return ExecutionResult(status="TIMED_OUT", error="States.Timeout")
            time.sleep(interval)
            interval = min(interval * 1.5, 0.01)
