"""The functions' real code paths, run against a moto stack named as `iam_policies.Stack` names
it, every AWS call recorded per holder and path.

Each function runs its real handler (functions/<step>/app.py, loaded by path as Lambda loads
it) with the environment the template gives it for the parameter set, after a cold start
(`concierge.wiring.reset()`), over tables, a bucket and items made in moto:

- the semantic function: a lookup that misses, remember (the first question of its bucket, then
  a second one), a lookup that finds the first;
- the retrieve function: a search, which first loads the index from S3 (or, with a knowledge
  base, searches it);
- the classify and condense functions: a question each, which first reads the categories they
  route by from S3 (the index, or the knowledge base's categories.json); their model calls are
  not among the paths (as for the answer function), so their route is the offline model;
- the api function: POST /chat (the chain's StartSyncExecution is stubbed with an Express
  reply; with daily limits the request then settles its budget), GET /me/usage, POST /feedback
  (the answer found in the history, the rating put on condition), DELETE /sessions/{id} of a
  session whose answers are in the semantic tier and rated, and, as an admin, DELETE
  /users/{sub} and POST /admin/cache/flush (one knowledge version's, then all);
- the operator's CLI (`concierge history delete`, `user delete`, `cache flush`) against the
  stack's tables by name, and `concierge feedback report` of a table named or of an
  environment's stack (CloudFormation stubbed: moto's needs packages this project does not
  install).

Each path checks its own outcome too (a 200, what it deleted), so a path that stops early
fails here instead of passing with fewer calls.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY
from moto import mock_aws

from concierge.adapters.dynamodb.formats import (
    BUDGET_DAY,
    CACHE_ENTRY,
    FEEDBACK,
    HISTORY_TURN,
    SEMANTIC_BUCKET,
)
from concierge.adapters.dynamodb.semantic import bucket_key, pack
from concierge.cache_keys import cache_key, cache_scope
from concierge.knowledge import IndexFile
from concierge.models.state import ChainOutput, QuestionScope, StepUsage
from concierge.prompt_library import prompt_versions
from concierge_cli.local.server import http_api_event
from concierge_cli.local.template import table_definitions
from infra.aws_calls import CallRecorder, Recorded, StubbedServices
from infra.iam_policies import Stack
from infra.tools import REPO_ROOT

ALICE = "7d3f9a2c-alice"
BOB = "0b1c2d3e-bob"
ADMIN = "9e8d7c6b-admin"
KB_VERSION = "1"
OTHER_KB_VERSION = "2"
TITAN_DIMENSIONS = 1024
FAR_FUTURE_MS = 4_102_444_800_000
STUBBED = frozenset({"stepfunctions", "bedrock-runtime", "bedrock-agent-runtime"})
OPERATOR = "Operator"


# -- the stack in moto ---------------------------------------------------------------------------
def create_tables(stack: Stack) -> None:
    client = boto3.client("dynamodb", region_name=stack.region)
    for logical_id, definition in table_definitions(stack.template).items():
        client.create_table(TableName=stack.name(logical_id), **definition)


class Seed:
    """A few users' stored data: turns, the cache entries their questions produced, budgets.

    alice asked twice in session s1 and once in s2, bob twice in s1 (one answer of another
    knowledge version). With `semantic_bucket`, alice's first answer is already in the semantic
    tier (as the semantic function would have put it); without, the semantic paths put it there.
    alice rated her first answer of each session (r0 in s1, r2 in s2), bob his first (r3).
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.scope = cache_scope(KB_VERSION, prompt_versions(), "offline")
        self.questions = {
            (ALICE, "s1", "How long is the warranty on tents?"): KB_VERSION,
            (ALICE, "s1", "Do you ship to Austria?"): KB_VERSION,
            (ALICE, "s2", "What do you sell?"): KB_VERSION,
            (BOB, "s1", "Which sleeping bag is warmest?"): KB_VERSION,
            (BOB, "s1", "Is there a student discount?"): OTHER_KB_VERSION,
        }
        self.keys = {
            question: cache_key(question[2], "en", self.scope) for question in self.questions
        }

    def key(self, user: str, session: str, question: str) -> str:
        return self.keys[(user, session, question)]

    def put(self, *, semantic_bucket: bool) -> None:
        client = boto3.client("dynamodb", region_name=self.stack.region)
        cache, history, budget, feedback = (
            self.stack.name(t)
            for t in ("CacheTable", "HistoryTable", "BudgetTable", "FeedbackTable")
        )
        now = int(datetime.now(UTC).timestamp())
        first = (ALICE, "s1", "How long is the warranty on tents?")
        bucket = bucket_key(
            QuestionScope(cache_scope=self.scope, language="en", embedding_model="offline")
        )
        for number, ((user, session, question), kb_version) in enumerate(self.questions.items()):
            key = self.keys[(user, session, question)]
            client.put_item(
                TableName=cache,
                Item=CACHE_ENTRY.item(
                    cache_key=key,
                    answer="An answer.",
                    citations="[]",
                    category="policies",
                    language="en",
                    request_id=f"r{number}",
                    user_id=user,
                    session_id=session,
                    kb_version=kb_version,
                    created_at=now,
                    expires_at=now + 3600,
                    hits=0,
                    semantic_bucket=bucket
                    if semantic_bucket and (user, session, question) == first
                    else None,
                ),
            )
            client.put_item(
                TableName=history,
                Item=HISTORY_TURN.item(
                    user_id=user,
                    turn_key=f"{session}#{now * 1000 + number:013d}#r{number}",
                    session_id=session,
                    request_id=f"r{number}",
                    question=question,
                    answer="An answer.",
                    category="policies",
                    language="en",
                    expires_at=now + 3600,
                    cache_key=key,
                ),
            )
        if semantic_bucket:
            client.put_item(
                TableName=cache,
                Item=SEMANTIC_BUCKET.item(
                    cache_key=bucket,
                    entries={self.keys[first]: {"B": pack([1.0] + [0.0] * 15)}},
                    kb_version=KB_VERSION,
                    expires_at=now + 3600,
                ),
            )
        for user, session, request_id in (
            (ALICE, "s1", "r0"),
            (ALICE, "s2", "r2"),
            (BOB, "s1", "r3"),
        ):
            client.put_item(
                TableName=feedback,
                Item=FEEDBACK.item(
                    user_id=user,
                    request_id=request_id,
                    session_id=session,
                    rating="up",
                    comment="Helpful.",
                    variant="default",
                    category="policies",
                    language="en",
                    created_at=now,
                    expires_at=now + 86_400,
                ),
            )
        for user, day in ((ALICE, "2026-11-21"), (ALICE, "2026-11-22"), (BOB, "2026-11-22")):
            client.put_item(
                TableName=budget,
                Item=BUDGET_DAY.item(
                    user_id=user,
                    utc_day=day,
                    committed_tokens=1000,
                    committed_micro_usd=2000,
                    tokens=1000,
                    micro_usd=2000,
                    expires_at=now + 86_400,
                ),
            )


def put_index(stack: Stack, uri: str, index: bytes) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3", region_name=stack.region)
    if bucket not in {found["Name"] for found in client.list_buckets()["Buckets"]}:
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": stack.region}
        )
    client.put_object(Bucket=bucket, Key=key, Body=index)


# -- functions -----------------------------------------------------------------------------------
_MODULES: dict[str, ModuleType] = {}


def handler(stack: Stack, function: str) -> Callable[[dict[str, Any], Any], Any]:
    """The function's handler, loaded from its CodeUri the way Lambda loads it (by path)."""
    properties = stack.template["Resources"][function]["Properties"]
    shared = stack.template.get("Globals", {}).get("Function", {})
    module_name, _, attribute = properties.get("Handler", shared.get("Handler")).rpartition(".")
    if function not in _MODULES:
        path = REPO_ROOT / properties["CodeUri"] / f"{module_name.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"iam_paths_{function}", path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[function] = module
    found: Callable[[dict[str, Any], Any], Any] = getattr(_MODULES[function], attribute)
    return found


class LambdaContext:
    """What Powertools reads from the Lambda context."""

    def __init__(self, name: str, arn: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "iam-paths"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@contextlib.contextmanager
def cold_start(variables: dict[str, str], stubs: StubbedServices) -> Iterator[None]:
    """A new container with exactly these CONCIERGE_* (and other) variables."""
    from concierge import wiring

    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("CONCIERGE_")]:
        del os.environ[name]
    os.environ.update(variables)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    wiring.reset()
    stubs.forget_clients()
    try:
        yield
    finally:
        stubs.assert_answered()
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()
        stubs.forget_clients()


def invoke(stack: Stack, function: str, event: dict[str, Any]) -> Any:
    context = LambdaContext(stack.name(function), stack.physical(function, "Arn"))
    return handler(stack, function)(event, context)


# -- the paths -----------------------------------------------------------------------------------
def run_function_paths(stack: Stack, index: bytes) -> list[Recorded]:
    """The api, semantic and retrieve functions' paths in a fresh moto stack: their calls."""
    recorder = CallRecorder()
    stubs = StubbedServices(STUBBED)
    with (
        mock_aws(),
        _region(stack.region),
        recorder.installed(),
        stubs.installed(),
    ):
        create_tables(stack)
        seed = Seed(stack)
        seed.put(semantic_bucket=False)
        _semantic_paths(stack, seed, recorder, stubs)
        _retrieve_paths(stack, index, recorder, stubs)
        _routing_paths(stack, index, recorder, stubs)
        _api_paths(stack, recorder, stubs)
    return recorder.calls


def run_cli_paths(stack: Stack) -> list[Recorded]:
    """The operator's CLI commands against the stack's tables, named: their calls."""
    from concierge_cli.main import main

    recorder = CallRecorder()
    tables = [
        "--history-table",
        stack.name("HistoryTable"),
        "--cache-table",
        stack.name("CacheTable"),
        "--budget-table",
        stack.name("BudgetTable"),
        "--feedback-table",
        stack.name("FeedbackTable"),
    ]
    commands = {
        "concierge history delete": ["history", "delete", "--session", "s1", "--user", ALICE],
        "concierge user delete": ["user", "delete", "--user", ALICE],
        "concierge cache flush --kb-version": ["cache", "flush", "--kb-version", KB_VERSION],
        "concierge cache flush --all": ["cache", "flush", "--all"],
    }
    printed: dict[str, dict[str, Any]] = {}
    with mock_aws(), _region(stack.region), recorder.installed():
        create_tables(stack)
        Seed(stack).put(semantic_bucket=True)
        with cold_start({}, StubbedServices(frozenset())):
            for path, arguments in commands.items():
                output = io.StringIO()
                with recorder.recording(OPERATOR, path), contextlib.redirect_stdout(output):
                    code = main([*arguments, *tables])
                assert code == 0, f"{path} exited {code}"
                printed[path] = json.loads(output.getvalue())
    assert printed["concierge history delete"]["turns"] == 2, printed
    assert printed["concierge history delete"]["cache_entries"] == 2, printed
    assert printed["concierge user delete"]["budget_days"] == 2, printed
    # The rating of s1 went with the session, the one of s2 with the user.
    assert printed["concierge user delete"]["feedback"] == 1, printed
    assert printed["concierge cache flush --kb-version"]["entries"] >= 1, printed
    assert printed["concierge cache flush --all"]["entries"] >= 1, printed
    return recorder.calls


def run_report_paths(stack: Stack, env: str, stack_name: str) -> list[Recorded]:
    """`concierge feedback report` of the stack's feedback table, named, then found through the
    outputs of environment `env`'s stack (`stack_name`, whose DescribeStacks is stubbed)."""
    from concierge_cli.main import main

    recorder = CallRecorder()
    stubs = StubbedServices(frozenset({"cloudformation"}))
    table = stack.name("FeedbackTable")
    commands = {
        "concierge feedback report --feedback-table": ["--feedback-table", table],
        "concierge feedback report --env": ["--env", env],
    }
    printed: dict[str, dict[str, Any]] = {}
    with mock_aws(), _region(stack.region), recorder.installed(), stubs.installed():
        create_tables(stack)
        Seed(stack).put(semantic_bucket=False)
        with cold_start({}, stubs):
            stubs.expect(
                "cloudformation",
                "describe_stacks",
                {
                    "Stacks": [
                        {
                            "StackName": stack_name,
                            "CreationTime": datetime.now(UTC),
                            "StackStatus": "UPDATE_COMPLETE",
                            "Outputs": [{"OutputKey": "FeedbackTableName", "OutputValue": table}],
                        }
                    ]
                },
                {"StackName": stack_name},
            )
            for path, arguments in commands.items():
                output = io.StringIO()
                with recorder.recording(OPERATOR, path), contextlib.redirect_stdout(output):
                    code = main(
                        ["--root", str(REPO_ROOT), "feedback", "report", *arguments, "--json"]
                    )
                assert code == 0, f"{path} exited {code}"
                printed[path] = json.loads(output.getvalue())
    for path, document in printed.items():
        assert document["ratings"] == 3, (path, document)
    return recorder.calls


@contextlib.contextmanager
def _region(region: str) -> Iterator[None]:
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def _semantic_paths(
    stack: Stack, seed: Seed, recorder: CallRecorder, stubs: StubbedServices
) -> None:
    function = "SemanticFunction"
    variables = stack.environment(function)
    model = variables["CONCIERGE_EMBEDDING_MODEL"]
    question = "How long is the warranty on tents?"
    lookup = {
        "action": "lookup",
        "request_id": "r-semantic",
        "question": question,
        "language": "en",
        "cache_scope": seed.scope,
        "deadline_ms": FAR_FUTURE_MS,
    }
    with cold_start(variables, stubs):
        for _ in range(2):
            _expect_embedding(stubs, model)
        with recorder.recording(function, "lookup"):
            missed = invoke(stack, function, lookup)
        assert missed["match_key"] is None, missed
        for path, (session, asked) in (
            ("remember (first question of its bucket)", ("s1", question)),
            ("remember", ("s1", "Do you ship to Austria?")),
        ):
            remember = {
                "action": "remember",
                "request_id": "r-semantic",
                "cache_key": seed.key(ALICE, session, asked),
                "language": "en",
                "cache_scope": seed.scope,
                # The second question's vector points the other way: the lookup finds the first.
                "vector": missed["vector"] if asked == question else [-v for v in missed["vector"]],
                "embedding_model": missed["embedding_model"],
                "kb_version": KB_VERSION,
                "expires_at": int(FAR_FUTURE_MS / 1000),
            }
            with recorder.recording(function, path):
                assert invoke(stack, function, remember) == {"remembered": True}
        with recorder.recording(function, "lookup"):
            found = invoke(stack, function, lookup)
        assert found["match_key"] == seed.key(ALICE, "s1", question), found


def _expect_embedding(stubs: StubbedServices, model: str) -> None:
    if not model.startswith("bedrock:"):
        return
    vector = [1.0] + [0.0] * (TITAN_DIMENSIONS - 1)
    # Titan answers one text's vector; Cohere Embed a list of them (one text a lookup).
    reply = (
        {"embeddings": [vector], "id": "e1", "texts": ["…"], "response_type": "embeddings_floats"}
        if "cohere.embed-" in model
        else {"embedding": vector, "inputTextTokenCount": 8}
    )
    body = json.dumps(reply).encode()
    stubs.expect(
        "bedrock-runtime",
        "invoke_model",
        {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json"},
        {"modelId": model.removeprefix("bedrock:"), "body": ANY, "contentType": ANY, "accept": ANY},
    )


def _retrieve_paths(
    stack: Stack, index: bytes, recorder: CallRecorder, stubs: StubbedServices
) -> None:
    function = "RetrieveFunction"
    variables = stack.environment(function)
    event = {
        "request_id": "r-retrieve",
        "question": "How long is the warranty on tents?",
        "category": "policies",
        "language": "en",
        "deadline_ms": FAR_FUTURE_MS,
    }
    with cold_start(variables, stubs):
        path = _prepare_retrieval(stack, variables, index, stubs)
        with recorder.recording(function, path):
            result = invoke(stack, function, event)
    assert result["passages"], result


def _prepare_retrieval(
    stack: Stack, variables: dict[str, str], index: bytes, stubs: StubbedServices
) -> str:
    """The knowledge base's reply, or the index in the bucket: the retrieve path's name."""
    if variables.get("CONCIERGE_RETRIEVER") == "bedrock-kb":
        # Two searches: under the classification's filter, and without one (its check).
        for _ in range(2):
            stubs.expect(
                "bedrock-agent-runtime",
                "retrieve",
                {
                    "retrievalResults": [
                        {
                            "content": {"text": "Tents carry a two-year warranty."},
                            "location": {
                                "type": "S3",
                                "s3Location": {"uri": "s3://docs/policies/warranty.md"},
                            },
                            "metadata": {
                                "category": "policies",
                                "language": "en",
                                "title": "Warranty",
                            },
                            "score": 0.71,
                        }
                    ]
                },
                {
                    "knowledgeBaseId": variables["CONCIERGE_KNOWLEDGE_BASE_ID"],
                    "retrievalQuery": ANY,
                    "retrievalConfiguration": ANY,
                },
            )
        return "retrieve (knowledge base)"
    put_index(stack, variables["CONCIERGE_INDEX_URI"], index)
    return "retrieve (index loaded from S3)"


def _routing_paths(
    stack: Stack, index: bytes, recorder: CallRecorder, stubs: StubbedServices
) -> None:
    """Classify and condense, each after a cold start: the menu is read from S3 first."""
    catalog = IndexFile.model_validate_json(index).catalog().model_dump_json().encode()
    question = {"request_id": "r-route", "deadline_ms": FAR_FUTURE_MS}
    events = {
        "ClassifyFunction": {**question, "question": "How do returns and refunds work?"},
        "CondenseFunction": {
            **question,
            "question": "How long do refunds take?",
            "history_items": [],
            "cache_scope": "scope",
        },
    }
    for function, event in events.items():
        variables = stack.environment(function)
        offline = {
            name: "offline" if name.endswith("_MODEL") else ""
            for name in variables
            if name.endswith(("_CLASSIFY_MODEL", "_CONDENSE_MODEL", "_FALLBACKS"))
        }
        with cold_start({**variables, **offline}, stubs):
            if variables.get("CONCIERGE_CATALOG_URI"):
                put_index(stack, variables["CONCIERGE_CATALOG_URI"], catalog)
                path = "route (categories.json beside the knowledge base)"
            else:
                put_index(stack, variables["CONCIERGE_INDEX_URI"], index)
                path = "route (categories of the index in S3)"
            with recorder.recording(function, path):
                result = invoke(stack, function, event)
        assert result["category"] == "policies", (function, result)


def _api_paths(stack: Stack, recorder: CallRecorder, stubs: StubbedServices) -> None:
    function = "ApiFunction"
    variables = stack.environment(function)
    limited = float(variables.get("CONCIERGE_DAILY_TOKEN_LIMIT") or 0) or float(
        variables.get("CONCIERGE_DAILY_USD_LIMIT") or 0
    )
    admins = variables.get("CONCIERGE_ADMIN_CLAIM", "cognito:groups")
    group = variables.get("CONCIERGE_ADMIN_GROUP", "admin")

    def call(
        path: str, method: str, target: str, body: Any = None, *, user: str, status: int = 200
    ) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else b""
        event = http_api_event(method, target, {"content-type": "application/json"}, data)
        claims = {"sub": user, admins: f"[{group}]" if user == ADMIN else "[]"}
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        with recorder.recording(function, path):
            response = invoke(stack, function, event)
        assert response["statusCode"] == status, (path, response)
        answer: dict[str, Any] = json.loads(response["body"])
        return answer

    with cold_start(variables, stubs):
        stubs.expect(
            "stepfunctions",
            "start_sync_execution",
            _express_reply(stack, reserved=bool(limited)),
            {
                "stateMachineArn": variables["CONCIERGE_STATE_MACHINE_ARN"],
                "name": ANY,
                "input": ANY,
            },
        )
        call(
            "POST /chat",
            "POST",
            "/chat",
            {"question": "What do you sell?", "session_id": "s3"},
            user=ALICE,
        )
        call("GET /me/usage", "GET", "/me/usage", user=ALICE)
        rated = call(
            "POST /feedback",
            "POST",
            "/feedback",
            {"request_id": "r1", "rating": "down", "comment": "Too vague."},
            user=ALICE,
            status=201,
        )
        assert rated == {"request_id": "r1", "rating": "down", "variant": "default"}, rated
        forgot = call("DELETE /sessions/{session_id}", "DELETE", "/sessions/s1", user=ALICE)
        assert (forgot["turns"], forgot["cache_entries"]) == (2, 2), forgot
        erased = call("DELETE /users/{user_id}", "DELETE", f"/users/{ALICE}", user=ADMIN)
        assert erased["turns"] == 1 and erased["budget_days"] >= 2, erased
        # The ratings of s1 (r0, r1) went with the session; r2's goes with the user.
        assert erased["feedback"] == 1, erased
        flushed = call(
            "POST /admin/cache/flush (one knowledge version)",
            "POST",
            "/admin/cache/flush",
            {"kb_version": KB_VERSION},
            user=ADMIN,
        )
        assert flushed["entries"] >= 1, flushed
        flushed = call(
            "POST /admin/cache/flush (all)", "POST", "/admin/cache/flush", {"all": True}, user=ADMIN
        )
        assert flushed["entries"] >= 1, flushed


def _express_reply(stack: Stack, *, reserved: bool) -> dict[str, Any]:
    """What StartSyncExecution answers for a successful Express execution of the chain."""
    machine = stack.physical("ChatStateMachine")
    name = str(uuid.uuid4())
    output = ChainOutput(
        status="answered",
        answer="We sell tents, sleeping bags and outdoor clothing [1].",
        citations=[],
        category="products",
        language="en",
        usage=[
            StepUsage(
                step="classify", model="offline", llm_calls=1, input_tokens=120, output_tokens=8
            ),
            StepUsage(
                step="answer", model="offline", llm_calls=1, input_tokens=900, output_tokens=60
            ),
        ],
        reserved=reserved,
    )
    now = datetime.now(UTC)
    return {
        "executionArn": machine.replace(":stateMachine:", ":express:") + f":{name}:{uuid.uuid4()}",
        "stateMachineArn": machine,
        "name": name,
        "startDate": now,
        "stopDate": now,
        "status": "SUCCEEDED",
        "output": json.dumps(output.model_dump(mode="json")),
    }
