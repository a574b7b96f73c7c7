"""The fault matrix (issue #14, item 5): the chain, run by the local server over HTTP with the
real definition and handlers, meets one fault at a time, and ends in an answer or in a clear,
fast error.

Each fault is injected where it happens in AWS, not in the steps: the model providers are
botocore clients stubbed with the service's own errors and replies (SageMaker for the answer's
self-hosted endpoint, Bedrock for its fallback and for classify), a table fails inside the
emulated DynamoDB that the state machine's tasks and the api function both reach, and the
knowledge base's index file goes missing. For every case the test checks the HTTP status and,
for an error, its shape and request id; the time taken against the request budget (the Step
Functions retry waits are recorded instead of slept, and added to the time measured, as the
real chain would have spent them); what the functions counted (their EMF lines); and that the
history holds exactly one turn for an answered request and none for a failed one.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from e2e.http_support import (
    ChatApi,
    assert_chat_reply,
    assert_error_reply,
    empty_tables,
    history_items,
    serving,
)
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from concierge import observability, wiring
from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime

ENDPOINT = "concierge-fault-matrix"
SELF_HOSTED = f"sagemaker:{ENDPOINT}:messages"
BEDROCK = "bedrock:anthropic.claude-3-haiku-20240307-v1:0"
ATTEMPTS = 2  # per model and per run of a step (CONCIERGE_MODEL_ATTEMPTS)
BUDGET_MS = 8_000  # short, so a path that waits too long shows
MARGIN_S = 1.0
# A clear first turn: the index decides its category, so classify calls no model.
QUESTION = "How long does it take to get my money back after I send something back?"
# One the sample hardly covers, so classify hands it to its model.
UNCLEAR_QUESTION = "Wie lange habe ich Garantie auf einen Rucksack?"
ANSWER = "Refunds reach your account within 14 days of the return arriving. [1]"
# The answer to UNCLEAR_QUESTION, in its language (one in another would be re-asked).
GERMAN_ANSWER = "Auf Rucksäcke gibt es zwei Jahre Garantie. [1]"
DDB_ERROR = "com.amazonaws.dynamodb.v20120810#"

# The answer's route in each server: the endpoint alone, or the endpoint, then Bedrock.
ROUTES = {
    "self-hosted": {"CONCIERGE_ANSWER_FALLBACKS": ""},
    "spill-over": {"CONCIERGE_ANSWER_FALLBACKS": BEDROCK},
}


# -- the providers ----------------------------------------------------------------------
class Providers:
    """The SageMaker runtime and Bedrock runtime clients the functions get, stubbed; `fresh`
    starts each request with empty queues."""

    SERVICES = ("sagemaker-runtime", "bedrock-runtime")

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubs: dict[str, Stubber] = {}
        self.fresh()

    def fresh(self) -> None:
        self.close()
        for service in self.SERVICES:
            client = boto3.client(
                service,
                region_name="us-east-1",
                aws_access_key_id="e2e-dummy",
                aws_secret_access_key="e2e-dummy",
            )
            self.clients[service] = client
            self.stubs[service] = Stubber(client)
            self.stubs[service].activate()

    def close(self) -> None:
        for stub in self.stubs.values():
            stub.deactivate()

    def endpoint_fails(self, code: str, status: int, times: int, **fields: Any) -> None:
        for _ in range(times):
            self.stubs["sagemaker-runtime"].add_client_error(
                "invoke_endpoint",
                service_error_code=code,
                service_message=f"{code} from the fault matrix",
                http_status_code=status,
                modeled_fields=fields or None,
            )

    def endpoint_replies(self, raw: bytes, times: int = 1) -> None:
        for _ in range(times):
            self.stubs["sagemaker-runtime"].add_response(
                "invoke_endpoint",
                {
                    "Body": StreamingBody(io.BytesIO(raw), len(raw)),
                    "ContentType": "application/json",
                },
            )

    def endpoint_answers(self, text: str = ANSWER) -> None:
        completion = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 800, "completion_tokens": 16},
        }
        self.endpoint_replies(json.dumps(completion).encode("utf-8"))

    def bedrock_fails(self, code: str, status: int, times: int) -> None:
        for _ in range(times):
            self.stubs["bedrock-runtime"].add_client_error(
                "converse",
                service_error_code=code,
                service_message=f"{code} from the fault matrix",
                http_status_code=status,
            )

    def bedrock_answers(self) -> None:
        self.stubs["bedrock-runtime"].add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 900, "outputTokens": 20, "totalTokens": 920},
                "metrics": {"latencyMs": 300},
            },
        )

    def all_used(self) -> None:
        """Every queued reply was asked for: as many attempts as the case says were made."""
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


# -- the server -----------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    route: str
    api: ChatApi
    runtime: LocalRuntime
    providers: Providers
    index_path: Path


@pytest.fixture(scope="module")
def service(
    request: pytest.FixtureRequest,
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    """The local server with the answer route of `request.param`, classify on Bedrock alone,
    a short request budget, and the functions' metrics printed as in Lambda. Its index is a
    copy, so a case may take it away."""
    route: str = request.param
    index_path = tmp_path_factory.mktemp(f"faults-{route}") / "index.json"
    shutil.copyfile(sample_index[0], index_path)
    providers = Providers()
    real_factory = wiring.aws_client

    def clients(service: str, read_timeout: float | None = None, region: str | None = None) -> Any:
        if service in providers.clients:
            return providers.clients[service]
        return real_factory(service, read_timeout, region)

    environ = {
        "CONCIERGE_ANSWER_MODEL": SELF_HOSTED,
        "CONCIERGE_CLASSIFY_MODEL": BEDROCK,
        "CONCIERGE_CLASSIFY_FALLBACKS": "",
        "CONCIERGE_MODEL_ATTEMPTS": str(ATTEMPTS),
        "CONCIERGE_RETRY_BASE_DELAY_MS": "0",
        "CONCIERGE_REQUEST_BUDGET_MS": str(BUDGET_MS),
        "POWERTOOLS_METRICS_DISABLED": "false",
        # Real-provider specs keep the process's credentials: dummy ones, never used.
        "AWS_ACCESS_KEY_ID": "e2e-dummy",
        "AWS_SECRET_ACCESS_KEY": "e2e-dummy",
        **ROUTES[route],
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wiring, "aws_client", clients)
        # The api function's Metrics took its namespace when the package was imported.
        patch.setattr(observability.metrics.provider, "namespace", "Concierge")
        with (
            LocalRuntime(repo_root, index_path, sample_index[1].kb_version, environ=environ) as rt,
            serving(rt) as api,
        ):
            yield Service(route, api, rt, providers, index_path)
    providers.close()


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Step Functions' retry waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


# -- the faults -----------------------------------------------------------------------
@dataclass
class Injector:
    service: Service
    monkeypatch: pytest.MonkeyPatch
    undo: list[Callable[[], None]] = field(default_factory=list)

    @property
    def providers(self) -> Providers:
        return self.service.providers

    def table_fails(self, logical_id: str, operations: tuple[str, ...], code: str) -> None:
        """The emulated DynamoDB answers `code` to these operations on one table, before
        doing anything: the table is throttled or unreachable for everyone."""
        name = self.service.runtime.table_names[logical_id]
        for operation in operations:
            original = getattr(DynamoDBBackend, operation)

            def failing(
                backend: Any, table_name: str, *args: Any, _run: Any = original, **kwargs: Any
            ) -> Any:
                if table_name == name:
                    raise JsonRESTError(DDB_ERROR + code, "injected by the fault matrix")
                return _run(backend, table_name, *args, **kwargs)

            self.monkeypatch.setattr(DynamoDBBackend, operation, failing)

    def index_missing(self) -> None:
        """The knowledge base's index is gone; the retriever loads it anew."""
        hidden = self.service.index_path.with_name("index.json.away")
        self.service.index_path.rename(hidden)
        wiring.reset()

        def restore() -> None:
            hidden.rename(self.service.index_path)
            wiring.reset()

        self.undo.append(restore)


NOT_JSON = b"<html><body>502 Bad Gateway</body></html>"


def model_throttled(faults: Injector) -> None:
    # Every attempt, in both runs of the answer task (Step Functions retries it once).
    faults.providers.endpoint_fails("ThrottlingException", 400, 2 * ATTEMPTS)


def model_5xx(faults: Injector) -> None:
    # The container's own 500, which SageMaker wraps in a ModelError (HTTP 424).
    faults.providers.endpoint_fails(
        "ModelError", 424, 2 * ATTEMPTS, OriginalStatusCode=500, OriginalMessage="boom"
    )


def model_timeout(faults: Injector) -> None:
    # The container timed out (its 408 in a ModelError): not retried by Step Functions.
    faults.providers.endpoint_fails(
        "ModelError", 424, ATTEMPTS, OriginalStatusCode=408, OriginalMessage="slow"
    )


def malformed_alone(faults: Injector) -> None:
    faults.providers.endpoint_replies(NOT_JSON, ATTEMPTS)


def malformed_then_fallback(faults: Injector) -> None:
    # Unreadable once: the route goes to Bedrock at once, without a retry.
    faults.providers.endpoint_replies(NOT_JSON)
    faults.providers.bedrock_answers()


def endpoint_down_alone(faults: Injector) -> None:
    faults.providers.endpoint_fails("ValidationError", 400, 2 * ATTEMPTS)


def endpoint_down_then_fallback(faults: Injector) -> None:
    faults.providers.endpoint_fails("ValidationError", 400, ATTEMPTS)
    faults.providers.bedrock_answers()


def cache_down(faults: Injector) -> None:
    faults.table_fails(
        "CacheTable", ("get_item", "put_item"), "ProvisionedThroughputExceededException"
    )
    faults.providers.endpoint_answers()


def history_down(faults: Injector) -> None:
    faults.table_fails(
        "HistoryTable", ("query", "put_item"), "ProvisionedThroughputExceededException"
    )
    faults.providers.endpoint_answers()


def retrieval_down(faults: Injector) -> None:
    faults.index_missing()


def classify_throttled(faults: Injector) -> None:
    faults.providers.bedrock_fails("ThrottlingException", 400, ATTEMPTS)
    faults.providers.endpoint_answers(GERMAN_ANSWER)


@dataclass(frozen=True)
class Fault:
    route: str
    inject: Callable[[Injector], None]
    status: int
    code: str | None = None  # the error's code; None for an answer
    question: str = QUESTION
    # How often Step Functions retried a task (a throttled answer once, a table task twice).
    retries: int = 0
    # What the functions counted: (step, or "api" for the api function; metric) -> value.
    counted: dict[tuple[str, str], float] = field(default_factory=dict)
    # The history after it: one turn for an answer, none for an error or a table that is down.
    turns: int = 0
    answer_model: str | None = None
    category: str | None = None


FAULTS = {
    # The endpoint alone on the answer's route.
    "model-throttled": Fault(
        "self-hosted",
        model_throttled,
        503,
        "model_unavailable",
        retries=1,
        counted={("api", "Status5xx"): 1},
    ),
    "model-5xx": Fault(
        "self-hosted",
        model_5xx,
        503,
        "model_unavailable",
        retries=1,
        counted={("api", "Status5xx"): 1},
    ),
    "model-timeout": Fault(
        "self-hosted", model_timeout, 504, "timeout", counted={("api", "Status5xx"): 1}
    ),
    "malformed-output": Fault(
        "self-hosted", malformed_alone, 502, "model_error", counted={("api", "Status5xx"): 1}
    ),
    "endpoint-down": Fault(
        "self-hosted",
        endpoint_down_alone,
        503,
        "model_unavailable",
        retries=1,
        counted={("api", "Status5xx"): 1},
    ),
    "cache-down": Fault(
        "self-hosted",
        cache_down,
        200,
        retries=4,
        counted={
            ("api", "Status2xx"): 1,
            ("api", "CacheReadFailed"): 1,
            ("api", "CacheWriteFailed"): 1,
            ("answer", "ModelFallbacks"): 0,
        },
        turns=1,
        answer_model=SELF_HOSTED,
    ),
    "history-down": Fault(
        "self-hosted",
        history_down,
        200,
        retries=4,
        counted={
            ("api", "Status2xx"): 1,
            ("api", "HistoryReadFailed"): 1,
            ("api", "HistoryWriteFailed"): 1,
        },
        # The turn cannot be kept while the table is down: counted, never written twice.
        turns=0,
    ),
    "retrieval-down": Fault(
        "self-hosted",
        retrieval_down,
        503,
        "knowledge_base_unavailable",
        counted={("api", "Status5xx"): 1},
    ),
    "classify-throttled": Fault(
        "self-hosted",
        classify_throttled,
        200,
        question=UNCLEAR_QUESTION,
        counted={("api", "Status2xx"): 1, ("classify", "ModelFailed"): 1},
        turns=1,
        answer_model=SELF_HOSTED,
        category="general",
    ),
    # The endpoint, then Bedrock.
    "malformed-output-with-fallback": Fault(
        "spill-over",
        malformed_then_fallback,
        200,
        counted={
            ("api", "Status2xx"): 1,
            ("answer", "ModelFallbacks"): 1,
            ("answer", "ModelRetries"): 0,
        },
        turns=1,
        answer_model=BEDROCK,
    ),
    "endpoint-down-with-fallback": Fault(
        "spill-over",
        endpoint_down_then_fallback,
        200,
        counted={
            ("api", "Status2xx"): 1,
            ("answer", "ModelFallbacks"): 1,
            ("answer", "ModelRetries"): ATTEMPTS - 1,
        },
        turns=1,
        answer_model=BEDROCK,
    ),
}
# The degraded counters a case does not expect must stay at zero.
DEGRADED = tuple(("api", name) for name in observability.DEGRADED_METRICS.values())


def counted(printed: str) -> dict[tuple[str, str], float]:
    """Every metric among the printed EMF documents, summed: (step or "api", name) -> value."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        step = document.get("step", "api")
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                totals[step, metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals


@pytest.fixture
def faults(service: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[Injector]:
    """Empty tables and fresh provider stubs; what a case took away is put back after it."""
    empty_tables(service.runtime)
    service.providers.fresh()
    injector = Injector(service, monkeypatch)
    yield injector
    for undo in reversed(injector.undo):
        undo()


@pytest.mark.parametrize(
    ("service", "fault"),
    [pytest.param(fault.route, fault, id=name) for name, fault in FAULTS.items()],
    indirect=["service"],
)
def test_a_fault_ends_in_an_answer_or_a_clear_fast_error(
    faults: Injector,
    fault: Fault,
    retry_waits: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the fault injected where it happens
    fault.inject(faults)
    capsys.readouterr()

    # When a question is asked over HTTP
    started = time.monotonic()
    reply = faults.service.api.chat(fault.question)
    taken = time.monotonic() - started + sum(retry_waits)
    printed = capsys.readouterr().out

    # Then it ends with the case's status: an answer, or the error shape with its code and the
    # request id of the x-request-id header
    if fault.code is None:
        body = assert_chat_reply(reply)
        request_id = body["request_id"]
        if fault.category is not None:
            assert body["category"] == fault.category
    else:
        request_id = assert_error_reply(reply, fault.status, fault.code)["request_id"]
    # And within the request budget, counting the retry waits the real chain would sleep
    assert taken <= BUDGET_MS / 1000 + MARGIN_S, (taken, retry_waits)
    # And the models were asked, and the tasks retried, exactly as often as the case expects
    faults.providers.all_used()
    assert len(retry_waits) == fault.retries, retry_waits
    # And it was counted: the case's metrics, and no other store degraded
    metrics = counted(printed)
    for key, value in fault.counted.items():
        assert metrics.get(key, 0) == value, (key, dict(metrics))
    for key in DEGRADED:
        if key not in fault.counted:
            assert metrics.get(key, 0) == 0, (key, dict(metrics))
    if ("classify", "ModelFailed") not in fault.counted:
        assert metrics.get(("classify", "ModelFailed"), 0) == 0
    # And the history holds the answered request's turn once, and nothing of a failed one
    turns = history_items(faults.service.runtime)
    assert len(turns) == fault.turns, turns
    for turn in turns:
        assert turn["request_id"]["S"] == request_id
        assert turn["answer_model"]["S"] == fault.answer_model
