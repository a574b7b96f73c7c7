"""The local API against its own OpenAPI document: schemathesis generates requests from the
document of the code, and no answer may be a 5xx, a status the document does not list, or a
body or content type that breaks it.

Two passes, both bounded and deterministic (derandomized, no example database), about 420
requests in all: schemathesis' coverage phase (its boundary cases: the longest question, each
field missing or of the wrong type, other methods), then random requests, a fixed number per
operation and mode (a valid POST /chat runs the whole local chain, so few of those).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from e2e.http_support import ChatApi
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, Config, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from concierge.api import openapi_document

# The coverage phase only, and only the methods the local server passes to the function
# (http.server answers PATCH, HEAD, OPTIONS or TRACE itself, with a 501 page; in AWS, API
# Gateway answers them, as any method or path without a route, with its own 404).
COVERAGE = Config.from_dict(
    {
        "phases": {
            "examples": {"enabled": False},
            "fuzzing": {"enabled": False},
            "stateful": {"enabled": False},
            "coverage": {"enabled": True, "unexpected-methods": ["GET", "POST", "PUT", "DELETE"]},
        }
    }
)
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
BOUNDARIES = schemathesis.openapi.from_dict(openapi_document(), config=COVERAGE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Random requests per operation and mode: about 370 in all.
BUDGET = [
    ("POST", "/chat", POSITIVE, 20),
    ("POST", "/chat", NEGATIVE, 150),
    ("POST", "/feedback", POSITIVE, 20),
    ("POST", "/feedback", NEGATIVE, 60),
    ("DELETE", "/sessions/{session_id}", POSITIVE, 40),
    ("DELETE", "/sessions/{session_id}", NEGATIVE, 80),
    ("GET", "/health", POSITIVE, 10),
]


@BOUNDARIES.parametrize()
@settings(database=None, derandomize=True, deadline=None, print_blob=False)
def test_boundary_requests_get_documented_answers(case: Case, module_api: ChatApi) -> None:
    # Given a boundary case of one operation, generated from the document
    base_url = f"http://{module_api.host}:{module_api.port}"

    # When / Then it is sent, and its answer passes the checks: no 5xx, a documented status,
    # content type and body
    case.call_and_validate(base_url=base_url, checks=CHECKS)


@pytest.mark.parametrize(
    ("method", "path", "mode", "examples"),
    BUDGET,
    ids=[f"{method} {path} {mode.value}" for method, path, mode, _ in BUDGET],
)
def test_generated_requests_get_documented_answers(
    api: ChatApi, method: str, path: str, mode: GenerationMode, examples: int
) -> None:
    # Given the local API and one operation of its document
    base_url = f"http://{api.host}:{api.port}"
    operation = SCHEMA[path][method]
    sent: list[Case] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answered_as_documented(case: Case) -> None:
        sent.append(case)
        case.call_and_validate(base_url=base_url, checks=CHECKS)

    # When requests generated from it are sent, each answer checked as it comes back
    answered_as_documented()

    # Then requests were sent, all for this operation, and no answer failed its checks
    assert sent
    assert {(case.method, case.path) for case in sent} == {(method, path)}


def test_the_local_server_serves_the_document_of_the_code(api: ChatApi) -> None:
    # When the local server is asked for its OpenAPI document
    reply = api.request("GET", "/openapi.json")

    # Then it is the one the routes generate, as JSON
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    document: dict[str, Any] = json.loads(reply.body)
    assert document == openapi_document()
