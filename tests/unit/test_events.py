"""The sample events in events/ (for `sam local invoke`) cover template.yaml and stay valid.

What must exist is read from the template and the state machine, never from a list here:

* every function (`AWS::Serverless::Function`) has an event, named after its `CodeUri` folder:
  `events/<step>.json` or `events/<step>-<variant>.json` (`functions/api` → `api-*.json`);
* every `HttpApi` route of a function has an event whose `routeKey` is that route, and that
  its function answers;
* every Lambda task of the state machine has an event with exactly the fields of its `Payload`
  (the semantic function's `lookup` and `remember` are two tasks, so two events).

Each event is a valid input of its function — the `concierge.models.state.*Input` its handler
imports, or an API Gateway HTTP API (payload 2.0) event for a function with routes — and runs
through the real handler in-process, offline, as `sam local invoke` would run it. A name ending
in `-invalid` marks an input the function must reject (400 for a request); one ending in
`-forbidden` a request to an administrators' route by a user who is not one (403).

An API event of a route behind the template's JWT authorizer carries the claims the authorizer
passes (`requestContext.authorizer.jwt.claims`, every value a string) of a token the template's
issuer signed and valid when the request was made; the handler answers it for those claims (the
same request without them is a 401, to an admin route without the admin group a 403), and what
reaches the chain and the tables is the event's: its caller's `sub`, its path and its body.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model
from pydantic import BaseModel, ValidationError

from concierge import wiring
from concierge.adapters.dynamodb.budgets import Spend
from concierge.adapters.dynamodb.feedback import AnsweredTurn, Rating
from concierge.adapters.dynamodb.semantic import SemanticMatch, bucket_key
from concierge.adapters.embeddings.port import cosine
from concierge.adapters.executor import ExecutionResult
from concierge.api import ApiServices
from concierge.api.app import ROUTES as API_ROUTES
from concierge.api.app import Access
from concierge.errors import InvalidStepInputError
from concierge.knowledge import IndexFile
from concierge.models import state
from concierge.models.http import (
    CacheFlush,
    ChatRequest,
    FeedbackRequest,
    FlushRequest,
    SessionDeletion,
    UserDeletion,
)
from concierge.models.identity import claim_values
from concierge.models.state import ChainInput, QuestionScope
from concierge_cli.local.template import functions, load_template, resources_of_type
from concierge_cli.local.template import state_machine as state_machine_of

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
README = EVENTS / "README.md"
TEMPLATE = load_template(ROOT / "template.yaml")
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# Request bodies of the routes that take one; every other route's events carry no body.
BODY_MODELS: dict[str, type[BaseModel]] = {
    "POST /chat": ChatRequest,
    "POST /feedback": FeedbackRequest,
    "POST /admin/cache/flush": FlushRequest,
}
# The routes the api function keeps for administrators (the template does not say which).
ADMIN_ROUTES = frozenset(
    f"{route.method} {route.path.replace('<', '{').replace('>', '}')}"
    for route in API_ROUTES
    if route.access is Access.ADMIN
)
# What an event's name says its function must answer instead of doing what it asks.
REFUSALS: dict[str, tuple[int, str]] = {
    "invalid": (400, "invalid_request"),
    "forbidden": (403, "forbidden"),
}
# `sam local invoke` must not fail on the request budget: deadlines are years away.
A_YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    # Behind a JWT authorizer: the `Fn::Sub` forms of the issuers it may trust (a parameter's
    # default for a `Ref`); empty without an authorizer (`Auth: {Authorizer: NONE}`).
    issuers: tuple[str, ...] = ()

    @property
    def signed_in(self) -> bool:
        return bool(self.issuers)

    @property
    def admin(self) -> bool:
        return self.key in ADMIN_ROUTES

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def parameters(self, raw_path: str) -> dict[str, str] | None:
        """The path parameters of `raw_path` when it is this route's path, else None."""
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, raw_path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class LambdaTask:
    """A Task state of the state machine that invokes a function, and what it sends it."""

    state: str
    function: str
    fields: frozenset[str]
    constants: tuple[tuple[str, Any], ...]
    # What the state reads from the function's reply: `$.Payload.<field>` in its ResultSelector.
    reads: frozenset[str]

    def sent(self, event: dict[str, Any]) -> bool:
        """Whether `event` has this task's shape: its Payload's fields and constant values."""
        return set(event) == self.fields and all(event[k] == v for k, v in self.constants)

    def describe(self) -> str:
        constants = dict(self.constants)
        return (
            "{"
            + ", ".join(
                f"{k}: {constants[k]!r}" if k in constants else k for k in sorted(self.fields)
            )
            + "}"
        )


@dataclass(frozen=True)
class Function:
    logical_id: str
    step: str
    handler_path: Path
    handler_name: str
    routes: tuple[Route, ...]
    tasks: tuple[LambdaTask, ...] = field(default=())

    def owns(self, event_name: str) -> bool:
        stem = event_name.removesuffix(".json")
        return stem == self.step or stem.startswith(self.step + "-")


def _lambda_tasks() -> list[LambdaTask]:
    machine = state_machine_of(TEMPLATE, ROOT)
    arns = {
        "${" + name + "}": value["Fn::GetAtt"][0]
        for name, value in machine.substitutions.items()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    definition = json.loads(machine.definition_path.read_text(encoding="utf-8"))
    tasks = []

    def visit(states: dict[str, Any]) -> None:
        for name, body in states.items():
            if body.get("Type") == "Task" and body.get("Resource") == LAMBDA_INVOKE:
                payload = body["Parameters"]["Payload"]
                selector = body.get("ResultSelector", {}).values()
                tasks.append(
                    LambdaTask(
                        state=name,
                        function=arns[body["Parameters"]["FunctionName"]],
                        fields=frozenset(key.removesuffix(".$") for key in payload),
                        constants=tuple((k, v) for k, v in payload.items() if not k.endswith(".$")),
                        reads=frozenset(
                            path.removeprefix("$.Payload.")
                            for path in selector
                            if isinstance(path, str) and path.startswith("$.Payload.")
                        ),
                    )
                )
            for branch in body.get("Branches", []):  # Parallel
                visit(branch["States"])
            if "ItemProcessor" in body:  # Map
                visit(body["ItemProcessor"]["States"])

    visit(definition["States"])
    return tasks


def _route(properties: dict[str, Any]) -> Route:
    """An `HttpApi` event's route, and the issuers of the authorizer in front of it."""
    api_id = properties.get("ApiId", {})
    api = TEMPLATE["Resources"][api_id["Ref"]]["Properties"] if "Ref" in api_id else {}
    auth = api.get("Auth", {})
    authorizer = properties.get("Auth", {}).get("Authorizer", auth.get("DefaultAuthorizer"))
    issuers: tuple[str, ...] = ()
    if authorizer not in (None, "NONE"):
        issuer = auth["Authorizers"][authorizer]["JwtConfiguration"]["issuer"]
        issuers = tuple(_substitutions(issuer))
    return Route(properties["Method"].upper(), properties["Path"], issuers)


def _substitutions(value: Any) -> Iterator[str]:
    """The strings an intrinsic may resolve to: either branch of an `Fn::If`, the form of an
    `Fn::Sub`, a parameter's default for a `Ref` (an empty one trusts no issuer)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and "Fn::Sub" in value:
        yield value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
    elif isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from _substitutions(branch)
    elif isinstance(value, dict) and "Ref" in value:
        default = TEMPLATE.get("Parameters", {}).get(value["Ref"], {}).get("Default", "")
        if default:
            yield str(default)


def _issuer_pattern(form: str, region: str) -> re.Pattern[str]:
    """An issuer's `Fn::Sub` form as a pattern, in `region`: a Cognito user pool's id is
    `<region>_<id>`, any other substitution one path segment."""
    pools = resources_of_type(TEMPLATE, "AWS::Cognito::UserPool")

    def substitute(found: re.Match[str]) -> str:
        name = found.group(1)
        if name == "AWS::Region":
            return re.escape(region)
        if name in pools:
            return re.escape(region) + "_[A-Za-z0-9]+"
        return "[^/]+"

    return re.compile(re.sub(r"\\\$\\\{([\w:.]+)\\\}", substitute, re.escape(form)))


def _template_default(variable: str) -> str:
    """What a function gets for an environment variable with the template's defaults."""
    for resource in resources_of_type(TEMPLATE, "AWS::Serverless::Function").values():
        value = resource["Properties"].get("Environment", {}).get("Variables", {}).get(variable)
        if isinstance(value, dict) and "Ref" in value:
            return str(TEMPLATE["Parameters"][value["Ref"]]["Default"])
        if value is not None:
            return str(value)
    raise AssertionError(f"no function of template.yaml sets {variable}")


def _functions() -> list[Function]:
    resources = resources_of_type(TEMPLATE, "AWS::Serverless::Function")
    tasks = _lambda_tasks()
    found = []
    for spec in functions(TEMPLATE, ROOT):
        events = resources[spec.logical_id]["Properties"].get("Events", {}).values()
        module, _, attribute = spec.handler.rpartition(".")
        found.append(
            Function(
                logical_id=spec.logical_id,
                step=spec.code_dir.name,
                handler_path=spec.code_dir / f"{module.replace('.', '/')}.py",
                handler_name=attribute,
                routes=tuple(_route(e["Properties"]) for e in events if e["Type"] == "HttpApi"),
                tasks=tuple(t for t in tasks if t.function == spec.logical_id),
            )
        )
    return found


FUNCTIONS = _functions()
# Who is an administrator: a group of a claim, as the template sets them by default.
ADMIN_CLAIM = _template_default("CONCIERGE_ADMIN_CLAIM")
ADMIN_GROUP = _template_default("CONCIERGE_ADMIN_GROUP")
EVENT_FILES = sorted(path.name for path in EVENTS.iterdir() if path.name != README.name)
ROUTES = [(function, route) for function in FUNCTIONS for route in function.routes]
TASKS = [task for function in FUNCTIONS for task in function.tasks]


def _owner(name: str) -> Function | None:
    """The function an event belongs to: the longest step its name starts with."""
    owners = [f for f in FUNCTIONS if f.owns(name)]
    return max(owners, key=lambda f: len(f.step)) if owners else None


def _events_of(function: Function) -> dict[str, dict[str, Any]]:
    return {name: _read(name) for name in EVENT_FILES if _owner(name) == function}


def _read(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return document


def _invalid(name: str) -> bool:
    return name.removesuffix(".json").endswith("-invalid")


def _refusal(name: str) -> tuple[int, str] | None:
    """The status and error code an event's name says it is refused with, or None."""
    variant = name.removesuffix(".json").rpartition("-")[2]
    return REFUSALS.get(variant)


def _owned(kind: str) -> list[str]:
    """Event files of functions with routes (`api`) or without (`step`)."""
    return [
        name
        for name in EVENT_FILES
        if (owner := _owner(name)) is not None and bool(owner.routes) == (kind == "api")
    ]


def _route_of(function: Function, event: dict[str, Any]) -> Route | None:
    return next((r for r in function.routes if r.key == event.get("routeKey")), None)


_MODULES: dict[str, ModuleType] = {}


def _handler_module(function: Function) -> ModuleType:
    """The function's handler file, loaded the way Lambda loads it (by path, not by package)."""
    if function.logical_id in _MODULES:
        return _MODULES[function.logical_id]
    loader = importlib.util.spec_from_file_location(
        f"sample_events_{function.logical_id}", function.handler_path
    )
    assert loader is not None and loader.loader is not None, function.handler_path
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    _MODULES[function.logical_id] = module
    return module


def _input_models(function: Function) -> list[type[BaseModel]]:
    """What the handler passes to `concierge.models.state.parse`: the `*Input` models it imports."""
    return [
        value
        for value in vars(_handler_module(function)).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == state.__name__
        and value.__name__.endswith("Input")
    ]


class _LambdaContext:
    """What Powertools reads from the Lambda context (as `sam local invoke` provides it)."""

    def __init__(self, function: Function) -> None:
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function.logical_id}"
        )
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = "sample-events"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _invoke(function: Function, event: dict[str, Any]) -> dict[str, Any]:
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = getattr(
        _handler_module(function), function.handler_name
    )
    return handler(event, _LambdaContext(function))


# -- doubles for what the handlers reach beyond the process ------------------------------------
class _QuestionIndex:
    """The semantic tier's vectors, in memory (in AWS: the cache table)."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, list[float]]] = {}

    def find(self, scope: QuestionScope, vector: list[float], threshold: float) -> SemanticMatch:
        scored = [
            (cosine(vector, v), key) for key, v in self.buckets.get(bucket_key(scope), {}).items()
        ]
        similarity, key = max(scored, default=(0.0, None))
        return SemanticMatch(
            cache_key=key if similarity >= threshold else None, similarity=round(similarity, 4)
        )

    def remember(
        self,
        scope: QuestionScope,
        entry_key: str,
        vector: list[float],
        *,
        kb_version: str,
        expires_at: int,
    ) -> None:
        self.buckets.setdefault(bucket_key(scope), {})[entry_key] = vector


# What the api function asked of the chain and the tables, in order: ("chain", user_id,
# session_id, question), ("delete_session", user_id, session_id), ("delete_user", user_id),
# ("flush_cache", kb_version or None), ("spent", user_id), ("settle", user_id),
# ("answered", user_id, request_id), ("rate", user_id, request_id, rating).
Reached = list[tuple[str | None, ...]]
# What the budget table double says every user spent today.
SPENT_TODAY = Spend(tokens=1234, micro_usd=5600)


class _Chain:
    """The state machine, as the api function sees it: takes a ChainInput, answers."""

    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    def run(self, name: str, payload: dict[str, Any], timeout_s: float) -> ExecutionResult:
        asked = ChainInput.model_validate(payload)
        self.reached.append(("chain", asked.user_id, asked.session_id, asked.question))
        output = {
            "status": "answered",
            "answer": "Alpenglow Outdoor designs and sells gear for hiking, trekking and camping. [1]",
            "citations": [
                {
                    "source": "en-product-overview.md",
                    "title": "What we sell – product overview",
                    "snippet": "Alpenglow Outdoor designs and sells gear for hiking.",
                }
            ],
            "category": "products",
            "language": "en",
            "usage": [],
        }
        return ExecutionResult(status="SUCCEEDED", output=output)


class _UserData:
    """The history and cache tables, as erasure and flushing see them (`ApiServices.user_data`):
    every session has two turns and a cache entry."""

    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    def delete_session(self, user_id: str, session_id: str) -> SessionDeletion:
        self.reached.append(("delete_session", user_id, session_id))
        return SessionDeletion(session_id=session_id, turns=2, cache_entries=1)

    def delete_user(self, user_id: str) -> UserDeletion:
        self.reached.append(("delete_user", user_id))
        return UserDeletion(user_id=user_id, turns=3, cache_entries=1, budget_days=2, feedback=1)

    def flush_cache(self, kb_version: str | None = None) -> CacheFlush:
        self.reached.append(("flush_cache", kb_version))
        return CacheFlush(entries=4, kb_version=kb_version)


class _Spending:
    """The budget table (`ApiServices.spending`)."""

    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    def settle(
        self, user_id: str, day: str, reserved: Spend, actual: Spend, expires_at: int
    ) -> None:
        self.reached.append(("settle", user_id))

    def spent(self, user_id: str, day: str) -> Spend:
        self.reached.append(("spent", user_id))
        return SPENT_TODAY


class _Ratings:
    """The feedback table, and the history its answers are found in (`ApiServices.ratings`):
    every user has answered every request id, once each."""

    def __init__(self, reached: Reached) -> None:
        self.reached = reached

    def answered(self, user_id: str, request_id: str) -> AnsweredTurn | None:
        self.reached.append(("answered", user_id, request_id))
        return AnsweredTurn(
            request_id=request_id,
            session_id="sample-session",
            variant="default",
            prompt_versions="classify-3,condense-3,answer-2",
            answer_model="offline",
            category="products",
            language="en",
        )

    def record(self, rating: Rating) -> bool:
        self.reached.append(("rate", rating.user_id, rating.turn.request_id, rating.rating))
        return True


@dataclass
class _Offline:
    index: _QuestionIndex
    chain: _Chain
    user_data: _UserData
    spending: _Spending
    ratings: _Ratings
    reached: Reached


@pytest.fixture
def offline(
    monkeypatch: pytest.MonkeyPatch, sample_index: tuple[Path, IndexFile]
) -> Iterator[_Offline]:
    """Every function's settings, offline: offline models over the sample index, and doubles
    for the tables and the state machine (unit tests reach no AWS, not even an emulated one).
    The api function's services are the composition root's own, over those doubles."""
    index_path, index = sample_index
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "concierge",
        "POWERTOOLS_METRICS_NAMESPACE": "Concierge",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CONCIERGE_CLASSIFY_MODEL": "offline",
        "CONCIERGE_CONDENSE_MODEL": "offline",
        "CONCIERGE_ANSWER_MODEL": "offline",
        "CONCIERGE_CATEGORIES": "products,pricing,policies,support,company",
        "CONCIERGE_INDEX_URI": str(index_path),
        "CONCIERGE_KB_VERSION": index.kb_version,
        "CONCIERGE_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:chat",
        "CONCIERGE_HISTORY_TABLE": "history",
        "CONCIERGE_CACHE_TABLE": "cache",
        "CONCIERGE_ADMIN_CLAIM": ADMIN_CLAIM,
        "CONCIERGE_ADMIN_GROUP": ADMIN_GROUP,
    }.items():
        monkeypatch.setenv(name, value)
    reached: Reached = []
    doubles = _Offline(
        _QuestionIndex(),
        _Chain(reached),
        _UserData(reached),
        _Spending(reached),
        _Ratings(reached),
        reached,
    )
    composed = wiring.api_services

    def api_services() -> ApiServices:
        # Without a daily limit (the template's default) the composition root builds no budget
        # table; the double stands in for one, so that GET /me/usage reads something. The
        # feedback table's double stands in for the one the settings below do not name.
        return replace(composed(), spending=doubles.spending, ratings=doubles.ratings)

    monkeypatch.setattr(wiring, "semantic_index", lambda: doubles.index)
    monkeypatch.setattr(wiring, "executor", lambda: doubles.chain)
    monkeypatch.setattr(wiring, "session_store", lambda *args: doubles.user_data)
    monkeypatch.setattr(wiring, "api_services", api_services)
    wiring.reset()
    yield doubles
    wiring.reset()


# -- what must exist ---------------------------------------------------------------------------
@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.logical_id)
def test_every_function_has_an_event(function: Function) -> None:
    # Given a function of template.yaml
    # When its events are looked up by its step name
    events = _events_of(function)
    # Then there is at least one
    assert events, (
        f"{function.logical_id} (CodeUri functions/{function.step}) has no sample event: add "
        f"events/{function.step}.json (or events/{function.step}-<variant>.json) and a line for "
        "it in events/README.md"
    )


@pytest.mark.parametrize(("function", "route"), ROUTES, ids=[route.key for _, route in ROUTES])
def test_every_route_has_an_event(function: Function, route: Route) -> None:
    # Given an HttpApi route of template.yaml
    # When the events of its function are read
    events = _events_of(function)
    # Then one of them is a request to that route that the function answers (not refuses)
    assert any(
        event.get("routeKey") == route.key and _refusal(name) is None
        for name, event in events.items()
    ), (
        f"no sample event for {route.key} ({function.logical_id}): add "
        f"events/{function.step}-<name>.json, an HTTP API payload 2.0 event with routeKey "
        f"{route.key!r} (start from another events/{function.step}-*.json, with the claims of "
        "an admin for an administrators' route), and a line for it in events/README.md"
    )


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.state)
def test_every_lambda_task_of_the_state_machine_has_an_event(task: LambdaTask) -> None:
    # Given a Task state that invokes a function, and what its Payload sends
    function = next(f for f in FUNCTIONS if f.logical_id == task.function)
    # When the events of that function are read
    events = _events_of(function)
    # Then one of them has exactly that shape
    assert any(task.sent(event) for event in events.values()), (
        f"the {task.state} state sends {task.function} {task.describe()}, and no sample event "
        f"has that shape: add events/{function.step}-<variant>.json with those fields, and a "
        "line for it in events/README.md"
    )


@pytest.mark.parametrize("name", EVENT_FILES)
def test_every_event_belongs_to_a_function(name: str) -> None:
    # Given a file in events/
    # When its name is matched against the functions' steps
    owner = _owner(name)
    # Then it is a JSON event of exactly one function
    steps = ", ".join(sorted(f.step for f in FUNCTIONS))
    assert name.endswith(".json"), f"events/{name}: events/ holds README.md and *.json only"
    assert owner is not None, (
        f"events/{name} belongs to no function of template.yaml: name it <step>.json or "
        f"<step>-<variant>.json, where <step> is one of: {steps}"
    )


@pytest.mark.parametrize("name", EVENT_FILES)
def test_the_readme_shows_how_to_invoke_every_event(name: str) -> None:
    # Given an event and the function it belongs to
    owner = _owner(name)
    assert owner is not None
    # When events/README.md is read
    readme = README.read_text(encoding="utf-8")
    # Then it has the event's `sam local invoke` command
    command = f"sam local invoke {owner.logical_id} -e events/{name}"
    assert command in readme, f"events/README.md: add a line for {name} with `{command}`"


# -- step events: what the state machine sends -------------------------------------------------
@pytest.mark.parametrize("name", _owned("step"))
def test_a_step_event_is_an_input_its_handler_parses(name: str) -> None:
    # Given a step event and the input models its function's handler parses
    function = _owner(name)
    assert function is not None
    event = _read(name)
    models = _input_models(function)
    assert models, (
        f"{function.handler_path.relative_to(ROOT)} imports no concierge.models.state *Input "
        "model: tests/unit/test_events.py cannot tell what it receives"
    )
    # When the event is parsed as each of them, as the handler does
    accepted = []
    for model in models:
        with contextlib.suppress(InvalidStepInputError):
            accepted.append(state.parse(model, event))
    # Then exactly one accepts it (none for an -invalid event)
    names = [type(parsed).__name__ for parsed in accepted]
    assert _refusal(name) in (None, REFUSALS["invalid"]), (
        f"events/{name}: a step has no caller to refuse; -forbidden is for requests to routes"
    )
    if _invalid(name):
        assert not accepted, f"events/{name} is named -invalid but parses as {names}"
        return
    assert len(accepted) == 1, (
        f"events/{name} must parse as exactly one of {[m.__name__ for m in models]}, parses "
        f"as {names}"
    )
    # And it carries exactly what a task of the state machine sends, nothing the model ignores
    if function.tasks:
        shapes = "; ".join(f"{t.state}: {t.describe()}" for t in function.tasks)
        assert any(t.sent(event) for t in function.tasks), (
            f"events/{name} has fields {sorted(event)}, but the state machine sends "
            f"{function.logical_id} one of: {shapes}"
        )
    # And its deadline is years away, so the request budget never runs out
    if "deadline_ms" in event:
        assert event["deadline_ms"] > time.time() * 1000 + A_YEAR_MS, (
            f"events/{name}: set deadline_ms far in the future (4102444800000 is 2100-01-01)"
        )


@pytest.mark.parametrize("name", _owned("step"))
def test_a_step_event_runs_through_its_handler(name: str, offline: _Offline) -> None:
    # Given a step event and its function's real handler, offline
    function = _owner(name)
    assert function is not None
    event = _read(name)
    if _invalid(name):
        # When it is invoked with an input it must reject / Then it raises the step's error
        with pytest.raises(InvalidStepInputError):
            _invoke(function, event)
        return
    # When it is invoked with the event, as `sam local invoke` does
    result = _invoke(function, event)
    # Then it answers with every field the state machine reads from its reply
    task = next((t for t in function.tasks if t.sent(event)), None)
    wanted = task.reads if task else frozenset()
    returned = json.loads(json.dumps(result))  # serialised, as Lambda returns it
    missing = sorted(wanted - set(returned))
    assert not missing, f"{function.logical_id} answered events/{name} without {missing}"


def test_the_semantic_events_remember_and_then_find_one_question(offline: _Offline) -> None:
    # Given the semantic function, and its remember event handled first
    semantic = next(f for f in FUNCTIONS if f.step == "semantic")
    remember, lookup = _read("semantic-remember.json"), _read("semantic-lookup.json")
    _invoke(semantic, remember)
    # When the lookup event asks its question
    found = _invoke(semantic, lookup)
    # Then the remembered question is found: the remember event stores what this lookup computes
    assert found["match_key"] == remember["cache_key"]
    assert found["embedding_model"] == remember["embedding_model"]
    assert found["vector"] == remember["vector"]
    assert (lookup["language"], lookup["cache_scope"]) == (
        remember["language"],
        remember["cache_scope"],
    )


# -- API events: what API Gateway sends --------------------------------------------------------
def _claims(event: dict[str, Any]) -> dict[str, Any]:
    """The claims API Gateway's JWT authorizer passed with the request ({} without)."""
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    claims: dict[str, Any] = (authorizer.get("jwt") or {}).get("claims") or {}
    return claims


def _with_claims(event: dict[str, Any], claims: dict[str, Any] | None) -> dict[str, Any]:
    """The same request with other claims, or with none (no authorizer's part at all)."""
    changed: dict[str, Any] = json.loads(json.dumps(event))
    changed["requestContext"].pop("authorizer", None)
    if claims is not None:
        changed["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return changed


@dataclass(frozen=True)
class _Request:
    """An API event as what it asks: who (its claims' `sub`), of which path, with which body."""

    event: dict[str, Any]

    @property
    def sub(self) -> str | None:
        sub: str | None = _claims(self.event).get("sub")
        return sub

    @property
    def path(self) -> dict[str, str]:
        parameters: dict[str, str] = self.event.get("pathParameters") or {}
        return parameters

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.event["body"]) if self.event.get("body") else {}
        return body


@dataclass(frozen=True)
class _Effect:
    """What answering a request reaches (the doubles' record) and fields of its answer."""

    reached: Reached
    answered: dict[str, Any]


def _chat_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    # A request without a session id starts a new one: the answer names it.
    session_id = request.body.get("session_id") or answer.get("session_id")
    return _Effect(
        reached=[("chain", request.sub, session_id, request.body["question"])],
        answered={
            "session_id": session_id,
            "request_id": request.event["requestContext"]["requestId"],
        },
    )


def _forget_session_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    session_id = request.path["session_id"]
    return _Effect([("delete_session", request.sub, session_id)], {"session_id": session_id})


def _feedback_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    rated, rating = request.body["request_id"], request.body["rating"]
    return _Effect(
        reached=[("answered", request.sub, rated), ("rate", request.sub, rated, rating)],
        answered={"request_id": rated, "rating": rating, "variant": "default"},
    )


def _usage_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    return _Effect(
        reached=[("spent", request.sub)],
        answered={
            "user_id": request.sub,
            "tokens": SPENT_TODAY.tokens,
            "cost_usd": SPENT_TODAY.micro_usd / 1_000_000,
        },
    )


def _erase_user_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    user_id = request.path["user_id"]
    return _Effect([("delete_user", user_id)], {"user_id": user_id})


def _flush_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    kb_version = request.body.get("kb_version")  # None: {"all": true}
    return _Effect([("flush_cache", kb_version)], {"kb_version": kb_version})


def _health_effect(request: _Request, answer: dict[str, Any]) -> _Effect:
    return _Effect([], {"status": "ok"})


# What a request to each route reaches beyond the function, from the event, and answers.
EFFECTS: dict[str, Callable[[_Request, dict[str, Any]], _Effect]] = {
    "POST /chat": _chat_effect,
    "POST /feedback": _feedback_effect,
    "DELETE /sessions/{session_id}": _forget_session_effect,
    "GET /me/usage": _usage_effect,
    "DELETE /users/{user_id}": _erase_user_effect,
    "POST /admin/cache/flush": _flush_effect,
    "GET /health": _health_effect,
}


def _answered_behind_the_authorizer() -> list[str]:
    """The API events their handler answers, of routes behind the JWT authorizer."""
    return [
        name
        for name in _owned("api")
        if _refusal(name) is None
        and (owner := _owner(name)) is not None
        and (route := _route_of(owner, _read(name))) is not None
        and route.signed_in
    ]


@pytest.mark.parametrize("name", _owned("api"))
def test_an_api_event_is_a_request_to_a_route_of_its_function(name: str) -> None:
    # Given an event of a function with HttpApi routes
    function = _owner(name)
    assert function is not None
    event = _read(name)
    # When it is parsed as an API Gateway HTTP API payload 2.0 event
    parsed = APIGatewayProxyEventV2Model.model_validate(event)
    route = _route_of(function, event)
    # Then it is a request to one of the function's routes, consistent throughout
    routes = [r.key for r in function.routes]
    assert route is not None, f"events/{name}: routeKey {parsed.routeKey!r} is none of {routes}"
    context = parsed.requestContext
    assert parsed.version == "2.0", f"events/{name}: version must be 2.0 (HttpApi payload)"
    assert context.routeKey == route.key, f"events/{name}: requestContext.routeKey != routeKey"
    assert context.http.method == route.method, f"events/{name}: the method is {route.method}"
    assert context.http.path == parsed.rawPath, (
        f"events/{name}: requestContext.http.path != rawPath"
    )
    parameters = route.parameters(parsed.rawPath)
    assert parameters is not None, f"events/{name}: rawPath {parsed.rawPath!r} is not {route.path}"
    assert (parsed.pathParameters or {}) == parameters, (
        f"events/{name}: pathParameters must be {parameters}, as in rawPath"
    )
    # And its body is what the route takes (rejected, for an -invalid event)
    body_model = BODY_MODELS.get(route.key)
    if body_model is None:
        assert not parsed.body, f"events/{name}: {route.key} takes no body"
        return
    assert isinstance(parsed.body, str), f"events/{name}: {route.key} takes a JSON body"
    if _invalid(name):
        with pytest.raises(ValidationError):
            body_model.model_validate_json(parsed.body)
    else:
        body_model.model_validate_json(parsed.body)


@pytest.mark.parametrize("name", _owned("api"))
def test_an_api_event_carries_the_claims_its_route_is_given(name: str) -> None:
    # Given an API event, and the authorizer template.yaml puts in front of its route
    function = _owner(name)
    assert function is not None
    event = _read(name)
    route = _route_of(function, event)
    assert route is not None, f"events/{name}: not a request to a route of {function.logical_id}"
    forbidden = _refusal(name) == REFUSALS["forbidden"]
    assert route.admin or not forbidden, (
        f"events/{name}: -forbidden is for a route of administrators; {route.key} is not one"
    )
    # When the authorizer's part of the request is read
    context = event["requestContext"]
    claims = _claims(event)
    # Then a route without an authorizer is given no claims, as API Gateway gives none
    if not route.signed_in:
        assert "authorizer" not in context, f"events/{name}: {route.key} has no authorizer"
        return
    # And a route behind it the claims of a token: every value a string, as API Gateway passes
    # them (a list as "[a b]", a number as its digits)
    assert set(context.get("authorizer") or {}) == {"jwt"} and claims, (
        f"events/{name}: {route.key} is behind the JWT authorizer: add "
        "requestContext.authorizer.jwt {claims, scopes} (copy them from events/api-chat.json)"
    )
    assert set(context["authorizer"]["jwt"]) == {"claims", "scopes"}, (
        f"events/{name}: requestContext.authorizer.jwt is {{claims, scopes}} (null scopes for "
        "an ID token)"
    )
    not_text = sorted(claim for claim, value in claims.items() if not isinstance(value, str))
    assert not not_text, f"events/{name}: API Gateway passes every claim as a string: {not_text}"
    assert claims.get("sub"), f"events/{name}: the claims name no user (`sub`)"
    # And the token is one the authorizer accepts: its issuer (in the API's region), an
    # audience, valid when the request was made
    found = re.search(r"\.execute-api\.([a-z0-9-]+)\.", context["domainName"])
    assert found is not None, f"events/{name}: domainName is not an execute-api host"
    region = found.group(1)
    issuer = claims.get("iss", "")
    assert any(_issuer_pattern(form, region).fullmatch(issuer) for form in route.issuers), (
        f"events/{name}: iss {issuer!r} is none of the issuers the authorizer trusts "
        f"({', '.join(route.issuers)}) in {region}"
    )
    audience = {"id": "aud", "access": "client_id"}.get(claims.get("token_use", "id"))
    assert audience is not None and claims.get(audience), (
        f"events/{name}: an ID token carries `aud`, an access token `client_id`"
    )
    at = context["timeEpoch"] // 1000
    assert int(claims["iat"]) <= at < int(claims["exp"]), (
        f"events/{name}: the token was not valid at the request's timeEpoch"
    )
    assert int(claims.get("auth_time", claims["iat"])) <= int(claims["iat"]), f"events/{name}"
    # And the caller of an administrators' route is one (not, for a -forbidden event)
    admin = ADMIN_GROUP in claim_values(claims.get(ADMIN_CLAIM))
    if forbidden:
        assert not admin, f"events/{name}: a -forbidden caller is not in group {ADMIN_GROUP}"
    elif route.admin:
        assert admin, (
            f"events/{name}: {route.key} is for administrators: give the caller the claim "
            f'"{ADMIN_CLAIM}": "[{ADMIN_GROUP}]"'
        )


@pytest.mark.parametrize("name", _owned("api"))
def test_an_api_event_runs_through_its_handler(name: str, offline: _Offline) -> None:
    # Given an API event and its function's real handler, the chain and the tables doubled
    function = _owner(name)
    assert function is not None
    event = _read(name)
    route = _route_of(function, event)
    assert route is not None
    # When it is invoked with the event, as `sam local invoke` does
    response = _invoke(function, event)
    answer = json.loads(response["body"])
    # Then it answers that request, under its request id
    assert response["headers"]["x-request-id"] == event["requestContext"]["requestId"]
    refusal = _refusal(name)
    if refusal is not None:
        # And an -invalid or -forbidden one is refused, reaching neither the chain nor a table
        assert (response["statusCode"], answer["error"]["code"]) == refusal, response["body"]
        assert offline.reached == []
        return
    assert 200 <= response["statusCode"] < 300, response["body"]
    # And what reached the chain or the tables is the event's: its caller, path and body
    effect = EFFECTS.get(route.key)
    assert effect is not None, (
        f"tests/unit/test_events.py: add to EFFECTS what a request to {route.key} reaches "
        "and answers"
    )
    expected = effect(_Request(event), answer)
    assert offline.reached == expected.reached
    assert {field: answer.get(field) for field in expected.answered} == expected.answered


@pytest.mark.parametrize("name", _answered_behind_the_authorizer())
def test_an_api_event_is_answered_for_its_claims(name: str, offline: _Offline) -> None:
    # Given an API event its handler answers, to a route behind the JWT authorizer
    function = _owner(name)
    assert function is not None
    event = _read(name)
    route = _route_of(function, event)
    assert route is not None
    claims = _claims(event)
    # When the same request comes without claims, and (to an administrators' route) from a
    # user outside the admin group
    unsigned = _invoke(function, _with_claims(event, None))
    demoted = {claim: value for claim, value in claims.items() if claim != ADMIN_CLAIM}
    refused = _invoke(function, _with_claims(event, demoted)) if route.admin else None
    # Then the first is a 401 and the second a 403: the event's claims are what is answered,
    # and neither request reaches the chain or a table
    assert unsigned["statusCode"] == 401, unsigned["body"]
    if refused is not None:
        assert refused["statusCode"] == 403, refused["body"]
    assert offline.reached == []
