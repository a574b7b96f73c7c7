"""Daily budgets on the real state machine: concurrent requests of one user overshoot the limit
by one request's reservation at most, and a cache hit reserves nothing.

The api function serves one request at a time in a process, so concurrency is made here below
it: the executions of the chain are started at once, each with the input `run_chat` builds for
its request, and each admitted one is then settled as the api function settles it
(`BudgetStore.settle` with the request's actual usage). All of a wave's reservations are made
before any of them is settled, the worst case for a limit: every admitted request is in flight
at once.

The runtime keeps its tables in SQLite (as `concierge serve` does), where each conditional
update is one transaction with its condition, as DynamoDB applies it atomically.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from concierge import wiring
from concierge.adapters.dynamodb.budgets import BudgetStore, Spend
from concierge.adapters.executor import ExecutionResult
from concierge.api.chat import run_chat
from concierge.api.services import ApiServices
from concierge.knowledge import IndexFile
from concierge.models.http import ChatRequest
from concierge.models.identity import User
from concierge.models.state import BudgetReservation, ChainFailure, ChainOutput
from concierge.pricing import micro_usd
from concierge_cli.local.runtime import REGION, LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_LIMIT = 4_000
# At least what one request can spend (a first turn with the offline models: about 1,000).
TOKEN_RESERVE = 1_500
PER_WAVE = 8
EXECUTION_TIMEOUT_S = 60.0


@pytest.fixture
def budgeted(tmp_path: Path, sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """The local runtime with a daily token limit, its tables in a SQLite file."""
    path, index = sample_index
    environ = {
        "CONCIERGE_DAILY_TOKEN_LIMIT": str(TOKEN_LIMIT),
        "CONCIERGE_REQUEST_TOKEN_RESERVE": str(TOKEN_RESERVE),
    }
    with LocalRuntime(
        REPO_ROOT, path, index.kb_version, environ=environ, state_path=tmp_path / "tables.sqlite3"
    ) as runtime:
        yield runtime


def questions() -> list[str]:
    """Distinct questions, each a cache miss the first time it is asked."""
    lines = (REPO_ROOT / "knowledge" / "sample" / "qa.jsonl").read_text("utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["question"] for line in lines if line.strip()))


class _Captured(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__("captured")
        self.payload = payload


class _Capture:
    """An executor that keeps the execution input `run_chat` hands it, and runs nothing."""

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        raise _Captured(payload)


@dataclasses.dataclass(frozen=True)
class Execution:
    request_id: str
    budget: BudgetReservation | None
    output: dict[str, Any]

    @property
    def refused(self) -> bool:
        return self.output.get("error") == "SpendLimitExceededError"

    @property
    def answered(self) -> ChainOutput:
        return ChainOutput.model_validate(self.output)

    @property
    def spent(self) -> Spend:
        usage = self.answered.usage
        return Spend(
            tokens=sum(step.input_tokens + step.output_tokens for step in usage),
            micro_usd=micro_usd(sum(step.cost_usd for step in usage)),
        )


class Chain:
    """Executions of the chain for a user, started at once, as the api function would start
    them; and the api function's settlement."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.services: ApiServices = wiring.api_services()
        self.stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.budgets = BudgetStore(self.dynamodb, runtime.table_names["BudgetTable"])

    def chain_input(self, user: str, question: str, session_id: str) -> dict[str, Any]:
        """The execution input `run_chat` builds for this request."""
        capturing = dataclasses.replace(self.services, executor=_Capture())
        request = ChatRequest(question=question, session_id=session_id)
        try:
            run_chat(request, uuid.uuid4().hex, User(user_id=user, admin=False), capturing)
        except _Captured as captured:
            return captured.payload
        raise AssertionError("run_chat started no execution")

    def run_at_once(self, user: str, asked: list[str]) -> list[Execution]:
        """Start one execution a question (each a first turn, in its own session), all before
        any of them is waited for; then wait for every one."""
        inputs = [self.chain_input(user, question, f"s-{uuid.uuid4().hex}") for question in asked]
        arns = [
            self.stepfunctions.start_execution(
                stateMachineArn=self.runtime.state_machine_arn,
                name=payload["request_id"],
                input=json.dumps(payload),
            )["executionArn"]
            for payload in inputs
        ]
        return [
            Execution(
                request_id=payload["request_id"],
                budget=BudgetReservation.model_validate(payload["budget"])
                if payload.get("budget")
                else None,
                output=self._wait(arn),
            )
            for payload, arn in zip(inputs, arns, strict=True)
        ]

    def _wait(self, arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + EXECUTION_TIMEOUT_S
        while True:
            described = self.stepfunctions.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                assert described["status"] == "SUCCEEDED", described
                output: dict[str, Any] = json.loads(described["output"])
                return output
            assert time.monotonic() < deadline, f"{arn} still running"
            time.sleep(0.01)

    def settle(self, user: str, execution: Execution) -> None:
        """What the api function does with a request that reserved: replace the reservation
        by the actual usage."""
        assert execution.budget is not None
        reserved = Spend(execution.budget.reserve_tokens, execution.budget.reserve_micro_usd)
        self.budgets.settle(
            user, execution.budget.day, reserved, execution.spent, execution.budget.expires_at
        )

    def counters(self, user: str) -> dict[str, int]:
        """The user's budget item of today: committed (spent + in flight) and spent tokens."""
        item = self.dynamodb.get_item(
            TableName=self.runtime.table_names["BudgetTable"],
            Key={"user_id": {"S": user}, "utc_day": {"S": datetime.now(UTC).strftime("%Y-%m-%d")}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return {}
        return {
            name: int(item[name]["N"]) for name in ("committed_tokens", "tokens") if name in item
        }


def test_concurrent_requests_overshoot_the_limit_by_one_reservation_at_most(
    budgeted: LocalRuntime,
) -> None:
    # Given one user with a daily limit of TOKEN_LIMIT tokens, each request reserving
    # TOKEN_RESERVE, and more distinct new questions than the limit allows
    chain = Chain(budgeted)
    pending = questions()
    waves: list[list[Execution]] = []
    in_flight: list[int] = []

    # When waves of PER_WAVE requests run at once, each wave settled once all of it is done,
    # until a whole wave is refused
    while not waves or not all(execution.refused for execution in waves[-1]):
        assert len(waves) < 10, "the budget never ran out"
        wave, pending = chain.run_at_once("ulla", pending[:PER_WAVE]), pending[PER_WAVE:]
        in_flight.append(chain.counters("ulla").get("committed_tokens", 0))
        for execution in wave:
            if not execution.refused:
                assert execution.answered.reserved is True
                chain.settle("ulla", execution)
        waves.append(wave)

    # Then the requests a wave refused failed with SpendLimitExceededError, before any model
    everything = [execution for wave in waves for execution in wave]
    refused = [execution for execution in everything if execution.refused]
    admitted = [execution for execution in everything if not execution.refused]
    assert refused
    for execution in refused:
        failure = ChainFailure.model_validate(execution.output)
        assert (failure.error, failure.reserved) == ("SpendLimitExceededError", False)
    # And each admitted request spent no more than it reserved (what the bound relies on)
    assert all(0 < execution.spent.tokens <= TOKEN_RESERVE for execution in admitted)
    # And the first wave, with nothing spent yet, admitted exactly the requests whose
    # reservations start under the limit, although all of them together would have overshot
    # it by more than a reservation
    first = [execution for execution in waves[0] if not execution.refused]
    assert len(first) == math.ceil(TOKEN_LIMIT / TOKEN_RESERVE)
    cheapest = min(execution.spent.tokens for execution in first)
    assert PER_WAVE * cheapest > TOKEN_LIMIT + TOKEN_RESERVE
    # And at no time were spend and reservations in flight over the limit by a reservation
    assert all(committed < TOKEN_LIMIT + TOKEN_RESERVE for committed in in_flight)
    # And once all is settled, what is committed is what was spent: the admitted requests'
    # actual usage, at the limit and over it by less than one request's reservation
    counters = chain.counters("ulla")
    spent = sum(execution.spent.tokens for execution in admitted)
    assert counters == {"committed_tokens": spent, "tokens": spent}
    assert TOKEN_LIMIT <= spent < TOKEN_LIMIT + TOKEN_RESERVE


def test_a_cache_hit_reserves_nothing(budgeted: LocalRuntime) -> None:
    # Given an answer vera's question cached, and her request settled
    chain = Chain(budgeted)
    (miss,) = chain.run_at_once("vera", ["What do you sell?"])
    assert miss.answered.status == "answered"
    chain.settle("vera", miss)
    veras = chain.counters("vera")

    # When vera and walt, who has spent nothing today, ask it again as first turns, at once
    hits = chain.run_at_once("vera", ["What do you sell?"]) + chain.run_at_once(
        "walt", ["What do you sell?"]
    )

    # Then both are served from the cache with nothing reserved for the api function to settle
    for hit in hits:
        assert (hit.answered.status, hit.answered.reserved) == ("cached", False)
    # And neither budget moved: vera's is what her miss spent, walt has none at all
    spent = miss.spent.tokens
    assert chain.counters("vera") == veras == {"committed_tokens": spent, "tokens": spent}
    assert chain.counters("walt") == {}
