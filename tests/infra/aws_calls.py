"""The AWS calls a code path makes, as the IAM requests AWS would authorise.

`CallRecorder` patches botocore's `BaseClient._make_api_call`, the one method every client call
goes through, so it sees every call of every client — one built by `concierge.wiring` or any
other — including calls a botocore `Stubber` answers. It records only inside `recording(…)`:
set-up calls (tables, items, the index upload) are not part of a path.

`iam_requests` turns one call into the (action, resource ARN) pairs IAM checks: the action is
the service's IAM prefix (its signing name: `stepfunctions` signs as `states`,
`bedrock-runtime` and `bedrock-agent-runtime` as `bedrock`, `sagemaker-runtime` as `sagemaker`)
and the operation, except where IAM names it otherwise (Converse is `bedrock:InvokeModel`); the
resource is what the call names (a table, `table/X/index/Y` for an IndexName, each table of a
batch, the state machine, `arn:aws:s3:::bucket/key`, a model, …). A call it does not know how to
read fails loudly: teach it rather than let a call pass unchecked.

`StubbedServices` answers the calls moto cannot (StartSyncExecution, Bedrock) with a botocore
`Stubber` on the client `concierge.wiring.aws_client` returns, so the path still runs and the
call is still recorded; each reply is queued by the path that expects it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.stub import Stubber

from infra.routes import GEOGRAPHIES

# Where IAM's action name is not the operation's.
_IAM_ACTIONS = {
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadBucket"): "s3:ListBucket",
}
# What stands for the id at the end of a stack's ARN (CloudFormation makes it at creation).
STACK_ID = "8d0b6a10-0f5e-11ef-9f1b-0a1b2c3d4e5f"
# A cross-region inference profile id starts with its geography.
_PROFILE = re.compile(rf"^({'|'.join(GEOGRAPHIES)})\.")


@dataclass(frozen=True)
class Call:
    """One API call: the client's service, its IAM prefix (signing name), operation, params."""

    service: str
    prefix: str
    operation: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """A call made by one path of one role holder."""

    holder: str
    path: str
    call: Call


@dataclass
class CallRecorder:
    calls: list[Recorded] = field(default_factory=list)
    _label: tuple[str, str] | None = None

    @contextmanager
    def installed(self) -> Iterator[CallRecorder]:
        """Record the calls of every client while `recording` is on."""
        original = BaseClient._make_api_call
        recorder = self

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if recorder._label is not None:
                model = client.meta.service_model
                call = Call(model.service_name, model.signing_name, operation_name, api_params)
                recorder.calls.append(Recorded(*recorder._label, call))
            return original(client, operation_name, api_params)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(BaseClient, "_make_api_call", make_api_call)
            yield self

    @contextmanager
    def recording(self, holder: str, path: str) -> Iterator[list[Recorded]]:
        """Record what runs inside as `path` of `holder`; yields this path's calls."""
        assert self._label is None, "paths do not nest"
        start = len(self.calls)
        mine: list[Recorded] = []
        self._label = (holder, path)
        try:
            yield mine
        finally:
            self._label = None
            mine.extend(self.calls[start:])


def iam_requests(call: Call, region: str, account: str) -> list[tuple[str, str]]:
    """The (action, resource) pairs IAM authorises for `call`."""
    action = _IAM_ACTIONS.get((call.service, call.operation), f"{call.prefix}:{call.operation}")
    resources = _resources(call, region, account)
    return [(action, resource) for resource in resources]


def _resources(call: Call, region: str, account: str) -> list[str]:
    params = call.params
    readers: dict[str, Callable[[], list[str]]] = {
        "dynamodb": lambda: _tables(call, region, account),
        "stepfunctions": lambda: [params.get("executionArn") or params["stateMachineArn"]],
        "s3": lambda: [
            f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
        ],
        "bedrock-runtime": lambda: [_model_arn(params, region, account)],
        "bedrock-agent-runtime": lambda: [
            f"arn:aws:bedrock:{region}:{account}:knowledge-base/{params['knowledgeBaseId']}"
        ],
        "lambda": lambda: [_function_arn(params["FunctionName"], region, account)],
        "sagemaker-runtime": lambda: [
            f"arn:aws:sagemaker:{region}:{account}:endpoint/{params['EndpointName'].lower()}"
        ],
        # A stack's ARN ends in its id, which the call does not name: any one of that name.
        "cloudformation": lambda: [
            f"arn:aws:cloudformation:{region}:{account}:stack/{params['StackName']}/{STACK_ID}"
        ],
    }
    if call.service not in readers:
        raise AssertionError(
            f"{call.service}.{call.operation}: tests/infra/aws_calls.py does not know which "
            "resource IAM checks for this service; teach `_resources`"
        )
    try:
        return readers[call.service]()
    except KeyError as missing:
        raise AssertionError(
            f"{call.service}.{call.operation}: no {missing} in the call; teach `_resources`"
        ) from None


def _tables(call: Call, region: str, account: str) -> list[str]:
    params = call.params

    def arn(table: str, index: str | None = None) -> str:
        base = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
        return f"{base}/index/{index}" if index else base

    if "TableName" in params:
        return [arn(params["TableName"], params.get("IndexName"))]
    if call.operation in {"BatchWriteItem", "BatchGetItem"}:
        return [arn(table) for table in params["RequestItems"]]
    if call.operation in {"TransactWriteItems", "TransactGetItems"}:
        return [arn(next(iter(item.values()))["TableName"]) for item in params["TransactItems"]]
    raise AssertionError(f"dynamodb.{call.operation}: which table does it name? teach `_tables`")


def _function_arn(function: str, region: str, account: str) -> str:
    if function.startswith("arn:"):
        return function
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


def _model_arn(params: dict[str, Any], region: str, account: str) -> str:
    if "guardrailIdentifier" in params and "modelId" not in params:  # ApplyGuardrail
        return f"arn:aws:bedrock:{region}:{account}:guardrail/{params['guardrailIdentifier']}"
    model = params["modelId"]
    if model.startswith("arn:"):
        return str(model)
    if _PROFILE.match(model):
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{model}"
    return f"arn:aws:bedrock:{region}::foundation-model/{model}"


@dataclass
class StubbedServices:
    """Stubbers on the clients of `services`, attached when `concierge.wiring` builds them."""

    services: frozenset[str]
    _stubbers: dict[str, Stubber] = field(default_factory=dict)
    _queued: dict[str, list[tuple[str, dict[str, Any], dict[str, Any] | None]]] = field(
        default_factory=dict
    )

    @contextmanager
    def installed(self) -> Iterator[StubbedServices]:
        from concierge import wiring

        build = wiring.aws_client
        stubbed = self

        def aws_client(
            service: str, read_timeout: float | None = None, region: str | None = None
        ) -> Any:
            client = build(service, read_timeout, region)
            if service in stubbed.services and service not in stubbed._stubbers:
                stubber = Stubber(client)
                for method, reply, expected in stubbed._queued.pop(service, []):
                    stubber.add_response(method, reply, expected)
                stubber.activate()
                stubbed._stubbers[service] = stubber
            return client

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(wiring, "aws_client", aws_client)
            try:
                yield self
            finally:
                for stubber in self._stubbers.values():
                    stubber.deactivate()

    def expect(
        self,
        service: str,
        method: str,
        reply: dict[str, Any],
        expected_params: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next `method` call of `service` with `reply`."""
        assert service in self.services, f"{service} is not stubbed"
        if service in self._stubbers:
            self._stubbers[service].add_response(method, reply, expected_params)
        else:
            self._queued.setdefault(service, []).append((method, reply, expected_params))

    def forget_clients(self) -> None:
        """After `wiring.reset()`: the next client of a service is a new one."""
        self.assert_answered()
        for stubber in self._stubbers.values():
            stubber.deactivate()
        self._stubbers.clear()

    def assert_answered(self) -> None:
        """Every reply queued was asked for."""
        for stubber in self._stubbers.values():
            stubber.assert_no_pending_responses()
        assert not any(self._queued.values()), f"never asked: {self._queued}"
