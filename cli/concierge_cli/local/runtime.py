"""The local runtime: statemachine/chat.asl.json executed by moto's Step Functions emulator,
its Lambda tasks calling the real handlers in-process, DynamoDB emulated by moto.

Everything is built from template.yaml: the tables' keys, the functions' code folders and the
definition's substitutions. Model calls use whatever the settings name: `offline` needs
nothing; `bedrock:…` with real credentials passes through the emulator to Bedrock.

With a `state_path` the tables keep their items in that SQLite file (see tables.py), item by
item, so history and cache survive restarts at no cost per stored item; without one they live
in memory and go with the runtime. A `state.json` snapshot left next to the file by earlier
versions is moved into it once, at start, and renamed `state.json.migrated`.
"""

from __future__ import annotations

import contextlib
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
from moto.dynamodb.models import dynamodb_backends
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from concierge import wiring
from concierge.models.identity import LOCAL_USER
from concierge.observability import logger, metrics
from concierge_cli.local import template as cfn
from concierge_cli.local.tables import StoredTable, TableStore, backend_patches

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
# What earlier versions kept the tables in: a JSON snapshot, rewritten after every request.
LEGACY_STATE = "state.json"


def local_environment(index_path: Path, kb_version: str) -> dict[str, str]:
    """Defaults for an offline run; anything already set in the environment wins."""
    return {
        "AWS_DEFAULT_REGION": REGION,
        "CONCIERGE_CLASSIFY_MODEL": "offline",
        "CONCIERGE_CONDENSE_MODEL": "offline",
        "CONCIERGE_ANSWER_MODEL": "offline",
        "CONCIERGE_INDEX_URI": str(index_path),
        "CONCIERGE_KB_VERSION": kb_version,
        "CONCIERGE_EXECUTION_MODE": "poll",
        "POWERTOOLS_SERVICE_NAME": "concierge",
        "POWERTOOLS_METRICS_NAMESPACE": "Concierge",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def _parsed_once(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto parses the whole definition with ANTLR when the state machine is created (to
    validate it) and again for every execution: 100 ms to 500 ms each, most of a local request
    and of a runtime's start. The parsed program is a tree of declarations (the state of an
    execution lives in its Environment), so one parse per definition serves them all."""
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def parse_once(definition: str) -> Any:
        with lock:
            if definition not in programs:
                programs[definition] = parse(definition)
            return programs[definition]

    return parse_once


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
        # The SQLite file the tables keep their items in between runs; None keeps nothing.
        self.state_path = state_path
        self.store: TableStore | None = None

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
        wiring.reset()
        uses_real_models = any(
            spec.startswith(_REAL_PROVIDERS)
            for step in ("classify", "condense", "answer")
            for spec in wiring.model_specs(step)
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
                AmazonStateLanguageParser,
                "parse",
                staticmethod(_parsed_once(AmazonStateLanguageParser.parse)),
            ),
        ]
        if self.state_path is not None:
            self.store = TableStore(self.state_path)
            self._patches += backend_patches()
        for patch in self._patches:
            patch.start()
        _forget_cached_state()
        self._role_arn = boto3.client("iam", region_name=REGION).create_role(
            RoleName=_ROLE_NAME, AssumeRolePolicyDocument=_TRUST_POLICY
        )["Role"]["Arn"]
        self._create_tables()
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
        if self.store is not None:
            self.store.close()
            self.store = None
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
        stored: dict[str, StoredTable] = {}
        for logical_id, definition in cfn.table_definitions(self.template).items():
            name = f"concierge-local-{logical_id}"
            created = dynamodb.create_table(TableName=name, **definition)
            self.table_names[logical_id] = name
            if self.store is not None:
                # The emulated account is moto's default unless MOTO_ACCOUNT_ID says otherwise.
                account = created["TableDescription"]["TableArn"].split(":")[4]
                table = dynamodb_backends[account][REGION].get_table(name)
                stored[logical_id] = self.store.keep(table)
        if self.store is not None:
            self._migrate_legacy_state(self.store, stored)
        # The api function reaches the tables itself (erasure, flush, budgets, feedback).
        self._set_environment(
            {
                "CONCIERGE_HISTORY_TABLE": self.table_names["HistoryTable"],
                "CONCIERGE_CACHE_TABLE": self.table_names["CacheTable"],
                "CONCIERGE_BUDGET_TABLE": self.table_names["BudgetTable"],
                "CONCIERGE_FEEDBACK_TABLE": self.table_names["FeedbackTable"],
            },
            force=True,
        )

    def _migrate_legacy_state(self, store: TableStore, tables: dict[str, StoredTable]) -> None:
        legacy = store.path.with_name(LEGACY_STATE)
        try:
            snapshot: dict[str, list[dict[str, Any]]] = json.loads(legacy.read_text("utf-8"))
        except FileNotFoundError:
            return
        with store.transaction():
            for logical_id, items in snapshot.items():
                # A table the template no longer has is left behind.
                if (table := tables.get(logical_id)) is not None:
                    for item in items:
                        table.put_item(_owned(logical_id, item))
        # Another runtime starting at the same moment may have moved it first: same items.
        with contextlib.suppress(FileNotFoundError):
            legacy.rename(legacy.with_name(f"{LEGACY_STATE}.migrated"))
        logging.getLogger(__name__).warning(
            "moved the tables of %s into %s (%s kept as %s.migrated)",
            legacy,
            store.path.name,
            LEGACY_STATE,
            LEGACY_STATE,
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


def _owned(logical_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """An item of a version before users: the local run had one user, so its turns and cache
    entries are the local user's (history is keyed by user, with the session in the sort key)."""
    if "user_id" in item or logical_id not in ("HistoryTable", "CacheTable"):
        return item
    owned = {**item, "user_id": {"S": LOCAL_USER}}
    if logical_id == "HistoryTable" and "session_id" in item:
        session, turn = item["session_id"]["S"], item["turn_key"]["S"]
        owned["turn_key"] = {"S": f"{session}#{turn}"}
    return owned


def _forget_cached_state() -> None:
    """Clients, settings and adapters are cached per process; a new runtime needs new ones."""
    wiring.reset()
