"""Alarms and dashboard: every metric they name is one that exists, and the right people hear.

A metric an alarm watches is found by namespace, name and the exact set of its dimensions: one
letter or one dimension off and CloudWatch finds nothing, the alarm sits in "OK" (missing data
is not breaching) and nobody is ever told. So every metric the alarms and the dashboard name is
compared with what is really emitted:

- namespace `Concierge`: the package's own metrics, as emitted by a process configured like the
  template's functions (infra.emitted_metrics drives the chain and the recorders and collects
  the EMF documents): same name, same dimension names, and the same value where the alarm
  names one (`step`=`answer`);
- `AWS/…`: the metrics and dimension sets the AWS services document (AWS_METRICS below).

Metrics appear as an alarm's own metric, a metric of its metric math, a Metrics Insights query
(`SELECT SUM(x) FROM SCHEMA(ns, dims…)`), a dashboard line or a dashboard `SEARCH`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from infra import self_hosted, tools
from infra.cfn_yaml import Evaluator
from infra.emitted_metrics import emf_metrics

# Alarms of the endpoints the routes may call exist only with some: a set of parameters that
# creates every alarm the template has.
EVERY_ALARM = {"SageMakerEndpointNames": "concierge-llama,other-endpoint"}
PARAMETER_SETS = {
    "defaults": {},
    "every alarm": EVERY_ALARM,
    "self-hosted": {**EVERY_ALARM, **self_hosted.PARAMETERS},
}

_API_ROUTE = frozenset({"ApiId", "Method", "Resource", "Stage"})
_API_GATEWAY = (frozenset({"ApiId"}), frozenset({"ApiId", "Stage"}), _API_ROUTE)
_ENDPOINT_VARIANT = (frozenset({"EndpointName", "VariantName"}),)
# What AWS publishes: (namespace, metric) -> the dimension sets it is published with.
AWS_METRICS: dict[tuple[str, str], tuple[frozenset[str], ...]] = {
    **{
        ("AWS/States", name): (frozenset({"StateMachineArn"}),)
        for name in ("ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut")
    },
    **{
        ("AWS/Lambda", name): (frozenset({"FunctionName"}),)
        for name in ("Errors", "Throttles", "Invocations", "Duration")
    },
    # HTTP APIs: per stage, and per route (Method, Resource) with detailed metrics on.
    **{
        ("AWS/ApiGateway", name): _API_GATEWAY
        for name in ("4xx", "5xx", "Count", "Latency", "IntegrationLatency")
    },
    **{
        ("AWS/SageMaker", name): _ENDPOINT_VARIANT
        for name in (
            "Invocations",
            "InvocationModelErrors",
            "Invocation4XXErrors",
            "Invocation5XXErrors",
            "InvocationsPerInstance",
            "ModelLatency",
            "OverheadLatency",
        )
    },
}
_INSIGHTS = re.compile(
    r"SELECT\s+\w+\((?P<name>\w+)\)\s+FROM\s+SCHEMA\(\s*(?P<namespace>\"[^\"]+\"|[\w/]+)"
    r"(?P<dimensions>(?:\s*,\s*\w+)*)\s*\)",
)
_SEARCH = re.compile(r"\{(?P<schema>[^}]+)\}\s*MetricName=\"(?P<name>\w+)\"")


@dataclass(frozen=True)
class Named:
    """A metric an alarm or a widget names: dimension values None where any value will do."""

    where: str
    namespace: str
    name: str
    dimensions: Mapping[str, str | None]

    def __str__(self) -> str:
        return f"{self.where}: {self.namespace} {self.name} {dict(self.dimensions)}"


def from_query(where: str, expression: str) -> Iterator[Named]:
    """The metrics a Metrics Insights query or a SEARCH expression reads."""
    for match in _INSIGHTS.finditer(expression):
        dimensions = [d.strip() for d in match["dimensions"].split(",") if d.strip()]
        namespace = match["namespace"].strip('"')
        yield Named(where, namespace, match["name"], dict.fromkeys(dimensions))
    for match in _SEARCH.finditer(expression):
        namespace, *dimensions = (part.strip() for part in match["schema"].split(","))
        yield Named(where, namespace, match["name"], dict.fromkeys(dimensions))


def from_alarm(name: str, properties: Mapping[str, Any]) -> Iterator[Named]:
    stats = [properties] if "MetricName" in properties else []
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            stats.append(query["MetricStat"]["Metric"])
        elif "Expression" in query:
            yield from from_query(name, query["Expression"])
    for metric in stats:
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        yield Named(name, metric["Namespace"], metric["MetricName"], dimensions)


def from_widget(title: str, lines: list[list[Any]]) -> Iterator[Named]:
    """A widget's metric lines: [namespace, name, dim, value, …, {options}], where "." repeats
    the item above it, or [{expression}]."""
    previous: list[Any] = []
    for line in lines:
        items = [item for item in line if not isinstance(item, dict)]
        for options in (item for item in line if isinstance(item, dict)):
            if "expression" in options:
                yield from from_query(title, options["expression"])
        if not items:
            continue
        if items == ["..."]:
            items = previous
        items = [previous[i] if item == "." else item for i, item in enumerate(items)]
        previous = items
        namespace, name, *pairs = items
        yield Named(title, namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)))


def named_metrics(template: dict[str, Any], parameters: dict[str, str]) -> list[Named]:
    evaluator = Evaluator(template, parameters)
    found: list[Named] = []
    for name, body in template["Resources"].items():
        if not evaluator.creates(name):
            continue
        if body["Type"] == "AWS::CloudWatch::Alarm":
            found += from_alarm(name, evaluator.resolve(body["Properties"]))
        elif body["Type"] == "AWS::CloudWatch::Dashboard":
            dashboard = json.loads(evaluator.resolve(body["Properties"]["DashboardBody"]))
            for widget in dashboard["widgets"]:
                properties = widget["properties"]
                found += from_widget(properties["title"], properties.get("metrics", []))
    return found


def alarm_names(template: dict[str, Any], evaluator: Evaluator) -> set[str]:
    return {
        name
        for name, body in template["Resources"].items()
        if body["Type"] == "AWS::CloudWatch::Alarm" and evaluator.creates(name)
    }


@pytest.fixture(scope="module")
def emitted(template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[Named]:
    """What the package emits, in a process with the functions' Powertools settings."""
    settings = template["Globals"]["Function"]["Environment"]["Variables"]
    out = tmp_path_factory.mktemp("metrics") / "emitted.json"
    result = tools.run(
        [sys.executable, "-m", "infra.emitted_metrics", out],
        env={
            "POWERTOOLS_METRICS_NAMESPACE": settings["POWERTOOLS_METRICS_NAMESPACE"],
            "POWERTOOLS_SERVICE_NAME": settings["POWERTOOLS_SERVICE_NAME"],
            "PYTHONPATH": os.pathsep.join(
                str(tools.REPO_ROOT / folder) for folder in ("tests", "functions")
            ),
        },
    )
    assert result.returncode == 0, tools.describe(result)
    return [
        Named("emitted", metric["namespace"], metric["name"], metric["dimensions"])
        for metric in json.loads(out.read_text(encoding="utf-8"))
    ]


def is_emitted(named: Named, emitted: list[Named]) -> bool:
    return any(
        metric.namespace == named.namespace
        and metric.name == named.name
        and set(metric.dimensions) == set(named.dimensions)
        and all(value in (None, metric.dimensions[key]) for key, value in named.dimensions.items())
        for metric in emitted
    )


def is_published_by_aws(named: Named) -> bool:
    dimension_sets = AWS_METRICS.get((named.namespace, named.name), ())
    return frozenset(named.dimensions) in dimension_sets


# -- the metrics exist ----------------------------------------------------------------------


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_every_metric_an_alarm_or_widget_names_is_emitted_as_named(
    template: dict[str, Any], emitted: list[Named], parameters: dict[str, str]
) -> None:
    # Given the metrics the alarms and the dashboard name for these parameters
    named = named_metrics(template, parameters)

    # When each is looked up among what the package emits, or what AWS publishes
    unknown = [
        str(metric)
        for metric in named
        if not (is_emitted(metric, emitted) if metric.namespace == "Concierge" else False)
        and not is_published_by_aws(metric)
    ]

    # Then every one exists, under the same namespace and dimensions
    assert named, "no alarm or widget names a metric"
    assert unknown == []


def test_the_package_metrics_carry_the_namespace_the_template_gives_the_functions(
    template: dict[str, Any], emitted: list[Named]
) -> None:
    # Given the namespace of the functions (Globals) and the metrics they emit
    namespace = template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]

    # When the namespaces of the emitted metrics are collected
    namespaces = {metric.namespace for metric in emitted}

    # Then it is that one, the one the alarms and the dashboard name
    assert namespaces == {namespace} == {"Concierge"}


def test_the_check_refuses_a_metric_named_with_a_dimension_it_lacks(
    emitted: list[Named],
) -> None:
    # Given a real metric named with one dimension too many, one misspelled, and the real one
    wrong_dimensions = Named("t", "Concierge", "CostUsd", {"service": None, "model": None})
    misspelled = Named("t", "Concierge", "CacheHits", {"service": "concierge"})
    right = Named("t", "Concierge", "CostUsd", {"service": "concierge", "step": "answer"})

    # When each is looked up among what is emitted
    found = [is_emitted(metric, emitted) for metric in (wrong_dimensions, misspelled, right)]

    # Then only the real one is found
    assert found == [False, False, True]


def test_the_chain_latency_alarms_read_a_route_with_detailed_metrics(
    template: dict[str, Any],
) -> None:
    # Given the per-route API Gateway metrics the alarms and widgets name
    per_route = {
        f"{m.dimensions['Method']} {m.dimensions['Resource']}"
        for m in named_metrics(template, EVERY_ALARM)
        if m.namespace == "AWS/ApiGateway" and set(m.dimensions) == _API_ROUTE
    }

    # When the HTTP API's route settings are read
    api = template["Resources"]["ChatApi"]["Properties"]
    settings = api.get("RouteSettings", {})

    # Then POST /chat is among them, each such route publishes detailed metrics, and the stage
    # is the one the metrics name
    assert "POST /chat" in per_route
    for route in per_route:
        assert settings.get(route, {}).get("DetailedMetricsEnabled") is True, route
    assert api.get("StageName", "$default") == "$default"


# -- who hears about it ---------------------------------------------------------------------


def page_members(evaluator: Evaluator, template: dict[str, Any]) -> set[str]:
    rule = evaluator.resolve(template["Resources"]["PageAlarm"]["Properties"]["AlarmRule"])
    return set(re.findall(r'ALARM\("<(\w+)\.Arn>"\)', rule))


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_each_alarm_pages_through_the_composite_or_notifies_the_topic_itself(
    template: dict[str, Any], parameters: dict[str, str]
) -> None:
    # Given a topic, and the alarms these parameters create
    topic = "arn:aws:sns:eu-west-1:123456789012:concierge-alarms"
    evaluator = Evaluator(template, {**parameters, "AlarmTopicArn": topic})
    alarms = alarm_names(template, evaluator)

    # When the composite's members and each alarm's actions are read
    members = page_members(evaluator, template)
    actions = {
        name: evaluator.resolve(template["Resources"][name]["Properties"]).get("AlarmActions")
        for name in alarms
    }
    page = evaluator.resolve(template["Resources"]["PageAlarm"]["Properties"])

    # Then the composite notifies the topic; its members notify no one themselves (one page per
    # incident), and every other alarm notifies the topic
    assert page["AlarmActions"] == [topic] and page["OKActions"] == [topic]
    assert members <= alarms and members
    for name in alarms:
        assert actions[name] == (None if name in members else [topic]), name


def test_without_a_topic_no_alarm_notifies(template: dict[str, Any]) -> None:
    # Given no AlarmTopicArn
    evaluator = Evaluator(template, EVERY_ALARM)

    # When every alarm's actions are resolved
    resolved = [
        evaluator.resolve(body["Properties"])
        for name, body in template["Resources"].items()
        if body["Type"].startswith("AWS::CloudWatch::") and "Alarm" in body["Type"]
        if evaluator.creates(name)
    ]

    # Then none has any
    assert all("AlarmActions" not in p and "OKActions" not in p for p in resolved)


def test_the_alarms_the_issue_asks_for_exist(template: dict[str, Any]) -> None:
    # Given every alarm the template can create, and the metrics they read
    evaluator = Evaluator(template, EVERY_ALARM)
    watched = {
        (m.namespace, m.name)
        for m in named_metrics(template, EVERY_ALARM)
        if m.where in alarm_names(template, evaluator)
    }
    statistics = {
        evaluator.resolve(template["Resources"][name]["Properties"]).get("ExtendedStatistic")
        for name in alarm_names(template, evaluator)
    }

    # Then latency tails, errors, throttling, degraded stores, safety, budgets, cost and the
    # SageMaker endpoints are all watched
    assert {"p95", "p99"} <= statistics
    assert {
        ("AWS/ApiGateway", "Latency"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/Lambda", "Throttles"),
        ("Concierge", "CacheReadFailed"),
        ("Concierge", "CacheWriteFailed"),
        ("Concierge", "HistoryReadFailed"),
        ("Concierge", "HistoryWriteFailed"),
        ("Concierge", "GuardrailIntervened"),
        ("Concierge", "BudgetExceeded"),
        ("Concierge", "CostUsd"),
        ("AWS/SageMaker", "InvocationModelErrors"),
        ("AWS/SageMaker", "ModelLatency"),
    } <= watched


def test_the_dashboard_shows_steps_tokens_cost_cache_fallbacks_and_variants(
    template: dict[str, Any],
) -> None:
    # When the metrics of the dashboard's widgets are collected
    shown = {
        (m.name, frozenset(m.dimensions))
        for m in named_metrics(template, {})
        if m.namespace == "Concierge"
    }
    by_step = frozenset({"service", "step"})
    by_variant = frozenset({"service", "variant"})

    # Then per-step latency, tokens and cost, the cache, fallbacks and the variants are on it
    assert {
        ("StepLatency", by_step),
        ("InputTokens", by_step),
        ("OutputTokens", by_step),
        ("CostUsd", by_step),
        ("ModelFallbacks", by_step),
        ("CacheHit", frozenset({"service"})),
        ("CacheMiss", frozenset({"service"})),
        ("VariantAnswered", by_variant),
        ("VariantCostUsd", by_variant),
    } <= shown


def test_emf_documents_are_read_as_one_metric_per_dimension_set() -> None:
    # Given printed lines: a log line, an EMF document with two dimension sets, and noise
    document = {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["a"], ["a", "b"]], "Metrics": [{"Name": "M"}]}
            ],
        },
        "a": "1",
        "b": "2",
        "M": 3,
    }
    printed = "\n".join(['{"level": "INFO"}', json.dumps(document), "not json"])

    # When the metrics are read from them
    found = emf_metrics(printed)

    # Then each dimension set is one metric, with its values
    assert found == [
        {"namespace": "N", "name": "M", "dimensions": {"a": "1"}},
        {"namespace": "N", "name": "M", "dimensions": {"a": "1", "b": "2"}},
    ]
