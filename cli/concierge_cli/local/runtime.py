"""The local runtime: statemachine/chat.asl.json executed by moto's Step Functions emulator,
its Lambda tasks calling the real handlers in-process, DynamoDB emulated in memory.

Everything is built from template.yaml: the tables' keys, the functions' code folders and the
definition's substitutions. Model calls use whatever the settings name: `offline` needs
nothing; `bedrock:…` with real credentials passes through the emulator to Bedrock.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from concierge.adapters.aws import reset_clients
from concierge.adapters.llm.registry import route_for
from concierge.config import get_settings
from concierge.handlers import retriever_for
from concierge.observability import logger, metrics
from concierge_cli.local import template as cfn

REGION = "us-east-1"
_ROLE_NAME = "concierge-local"
_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
# Real model providers are reached directly, not emulated.
_PASSTHROUGH = ["bedrock-runtime", "bedrock-agent-runtime", "sagemaker-runtime"]
_REAL_PROVIDERS = ("bedrock:",)

Handler = Callable[[dict[str, Any], Any], Any]

# moto logs every failed evaluation at ERROR, including the ones the definition expects and
# handles (IsPresent on a missing cache item, a caught step failure). The chain's outcome is
# reported by the execution result and the api function's logs instead.
_EMULATOR_EVALUATION_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"


def local_environment(index_path: Path, kb_version: str) -> dict[str, str]:
    """Defaults for an offline run; anything already set in the environment wins."""
    return {
        "AWS_DEFAULT_REGION": REGION,
        "CONCIERGE_CLASSIFY_MODEL": "offline",
        "CONCIERGE_CONDENSE_MODEL": "offline",
        "CONCIERGE_ANSWER_MODEL": "offline",
        "CONCIERGE_CATEGORIES": "products,pricing,policies,support,company",
        "CONCIERGE_INDEX_URI": str(index_path),
        "CONCIERGE_KB_VERSION": kb_version,
        "CONCIERGE_EXECUTION_MODE": "poll",
        "POWERTOOLS_SERVICE_NAME": "concierge",
        "POWERTOOLS_METRICS_NAMESPACE": "Concierge",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def _parsed_once(worker: type[ExecutionWorker]) -> Callable[[ExecutionWorker], Any]:
    """moto parses the whole definition with ANTLR for every execution: about 100 ms here,
    a third of a local request. The parsed program is a tree of declarations (the state of an
    execution lives in its Environment), so one parse per definition serves every execution."""
    parse = worker._get_evaluation_entrypoint
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def entrypoint(self: ExecutionWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            if definition not in programs:
                programs[definition] = parse(self)
            return programs[definition]

    return entrypoint


class _LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    def __init__(self, function_name: str, arn: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _load_handler(spec: cfn.FunctionSpec) -> Handler:
    module_name, _, attribute = spec.handler.rpartition(".")
    path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
    unique = f"concierge_local_fn_{spec.logical_id}"
    loader_spec = importlib.util.spec_from_file_location(unique, path)
    if loader_spec is None or loader_spec.loader is None:
        raise FileNotFoundError(f"cannot load handler {spec.handler} from {path}")
    module: ModuleType = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    handler: Handler = getattr(module, attribute)
    return handler


class LocalRuntime:
    """Start with `with LocalRuntime(root, index_path) as runtime:`; then `runtime.api(event)`."""

    def __init__(
        self,
        root: Path,
        index_path: Path,
        kb_version: str = "local",
        environ: Mapping[str, str] | None = None,
        state_path: Path | None = None,
    ) -> None:
        self.root = root
        self.template = cfn.load_template(root / "template.yaml")
        self._defaults = local_environment(index_path, kb_version)
        self._overrides = dict(environ or {})
        self._saved_environment: dict[str, str | None] = {}
        self._handlers: dict[str, tuple[str, Handler]] = {}
        self._lock = threading.Lock()
        self._mock: Any = None
        self._patches: list[Any] = []
        self._log_level = logger.log_level
        self.state_machine_arn = ""
        self._role_arn = ""
        self.table_names: dict[str, str] = {}
        # Where the emulated tables are kept between runs (history, cache); None keeps nothing.
        self.state_path = state_path

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        logging.getLogger(_EMULATOR_EVALUATION_LOGGER).setLevel(logging.CRITICAL)
        self._set_environment(self._defaults)
        self._set_environment(self._overrides, force=True)
        # The Logger took its level when it was imported, before these settings existed.
        self._log_level = logger.log_level
        logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])
        # Only a real provider needs real credentials; an unknown spec fails in its step.
        uses_real_models = any(
            os.environ[f"CONCIERGE_{step}_MODEL"].startswith(_REAL_PROVIDERS)
            for step in ("CLASSIFY", "CONDENSE", "ANSWER")
        )
        self._mock = mock_aws(
            config={
                "stepfunctions": {"execute_state_machine": True},
                "lambda": {"use_docker": False},
                "core": {
                    # Real credentials are kept when a real model is configured.
                    "mock_credentials": not uses_real_models,
                    "passthrough": {"services": _PASSTHROUGH, "urls": []},
                    "reset_boto3_session": True,
                },
            }
        )
        self._mock.start()
        self._patches = [
            mock.patch.object(LambdaSimpleBackend, "invoke", self._make_invoke()),
            mock.patch.object(
                ExecutionWorker, "_get_evaluation_entrypoint", _parsed_once(ExecutionWorker)
            ),
        ]
        for patch in self._patches:
            patch.start()
        _forget_cached_state()
        self._role_arn = boto3.client("iam", region_name=REGION).create_role(
            RoleName=_ROLE_NAME, AssumeRolePolicyDocument=_TRUST_POLICY
        )["Role"]["Arn"]
        self._create_tables()
        self._load_state()
        substitutions = self._create_functions()
        self._create_state_machine(substitutions)
        self._set_environment({"CONCIERGE_STATE_MACHINE_ARN": self.state_machine_arn}, force=True)
        _forget_cached_state()

    def stop(self) -> None:
        for patch in reversed(self._patches):
            patch.stop()
        self._patches = []
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment.clear()
        logger.setLevel(self._log_level)
        _forget_cached_state()

    # -- the HTTP edge ---------------------------------------------------------------------
    def api(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the `api` function's handler with an HTTP API event, as API Gateway would."""
        name, handler = self._handlers["ApiFunction"]
        try:
            result: dict[str, Any] = handler(event, _LambdaContext(name, self._arn(name)))
        finally:
            # Powertools keeps unpublished metrics when metrics are disabled (as they are
            # locally) and fails at 100 of them; in Lambda every invocation flushes them.
            metrics.clear_metrics()
        return result

    # -- keeping the emulated tables between runs -----------------------------------------
    def save_state(self) -> None:
        """Write every item of every table to `state_path`, atomically."""
        if self.state_path is None:
            return
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        snapshot = {
            logical_id: [
                item
                for page in dynamodb.get_paginator("scan").paginate(TableName=name)
                for item in page["Items"]
            ]
            for logical_id, name in self.table_names.items()
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot), encoding="utf-8")
        os.replace(temporary, self.state_path)

    def _load_state(self) -> None:
        if self.state_path is None or not self.state_path.is_file():
            return
        snapshot: dict[str, list[dict[str, Any]]] = json.loads(self.state_path.read_text("utf-8"))
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, items in snapshot.items():
            # A table the template no longer has is ignored, not recreated.
            if (name := self.table_names.get(logical_id)) is not None:
                for item in items:
                    dynamodb.put_item(TableName=name, Item=item)

    # -- building the emulated resources ---------------------------------------------------
    def _set_environment(self, values: Mapping[str, str], force: bool = False) -> None:
        """Set variables, remembering old values; without `force` the user's own settings win."""
        for name, value in values.items():
            if name not in self._saved_environment:
                self._saved_environment[name] = os.environ.get(name)
            if force or os.environ.get(name) is None:
                os.environ[name] = value

    def _create_tables(self) -> None:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, definition in cfn.table_definitions(self.template).items():
            name = f"concierge-local-{logical_id}"
            dynamodb.create_table(TableName=name, **definition)
            self.table_names[logical_id] = name
        # The api function reaches the tables itself for DELETE /sessions/{id}.
        self._set_environment(
            {
                "CONCIERGE_HISTORY_TABLE": self.table_names["HistoryTable"],
                "CONCIERGE_CACHE_TABLE": self.table_names["CacheTable"],
            },
            force=True,
        )

    def _create_functions(self) -> dict[str, str]:
        lambda_client = boto3.client("lambda", region_name=REGION)
        arns: dict[str, str] = {}
        for spec in cfn.functions(self.template, self.root):
            name = f"concierge-local-{spec.logical_id}"
            created = lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=self._role_arn,
                Handler=spec.handler,
                Code={"ZipFile": b"in-process"},
            )
            arns[spec.logical_id] = created["FunctionArn"]
            self._handlers[spec.logical_id] = (name, _load_handler(spec))
        return arns

    def _create_state_machine(self, function_arns: dict[str, str]) -> None:
        spec = cfn.state_machine(self.template, self.root)
        values = {
            name: self._resolve(value, function_arns) for name, value in spec.substitutions.items()
        }
        definition = cfn.substitute(spec.definition_path.read_text(encoding="utf-8"), values)
        json.loads(definition)  # a bad substitution fails here, not mid-request
        created = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="concierge-local-chat",
            definition=definition,
            roleArn=self._role_arn,
            type="EXPRESS",
        )
        self.state_machine_arn = created["stateMachineArn"]

    def _resolve(self, value: Any, function_arns: dict[str, str]) -> str:
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in self.table_names:
            return self.table_names[value["Ref"]]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            if attribute == "Arn" and logical_id in function_arns:
                return function_arns[logical_id]
        if isinstance(value, str):
            return value
        raise ValueError(f"the local runtime cannot resolve substitution {value!r}")

    def _arn(self, function_name: str) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"

    def _make_invoke(self) -> Callable[..., bytes]:
        by_name = self._handlers

        def invoke(  # noqa: PLR0917 - the signature of the moto method it replaces
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            name = function_name.rsplit(":function:", 1)[-1].split(":", 1)[0]
            handler = next((h for n, h in by_name.values() if n == name), None)
            if handler is None:
                raise KeyError(f"no in-process handler for {function_name}")
            event = json.loads(body) if body else {}
            try:
                result = handler(event, _LambdaContext(name, self._arn(name)))
            except Exception as error:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {"errorType": type(error).__name__, "errorMessage": str(error)}
                ).encode()
            return json.dumps(result).encode()

        return invoke


def _forget_cached_state() -> None:
    """Clients, settings and adapters are cached per process; a new runtime needs new ones."""
    reset_clients()
    get_settings.cache_clear()
    route_for.cache_clear()
    retriever_for.cache_clear()
