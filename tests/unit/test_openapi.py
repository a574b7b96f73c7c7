"""The OpenAPI document: generated from the routes, committed as docs/openapi.json, and true to
the contract (every status a route answers is documented, errors in the error shape)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from concierge.api import openapi_document
from concierge_cli.openapi import COMMITTED, main, render

REPO_ROOT = Path(__file__).resolve().parents[2]
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
OPERATIONS = {
    ("post", "/chat"): {"200", "400", "401", "413", "429", "500", "502", "503", "504"},
    ("post", "/feedback"): {"201", "400", "401", "404", "409", "413", "500", "503"},
    ("delete", "/sessions/{session_id}"): {"200", "400", "401", "404", "500", "503"},
    ("get", "/me/usage"): {"200", "401", "500", "503"},
    ("delete", "/users/{user_id}"): {"200", "400", "401", "403", "500", "503"},
    ("post", "/admin/cache/flush"): {"200", "400", "401", "403", "500", "503"},
    ("get", "/health"): {"200", "500"},
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_the_committed_document_is_the_one_the_code_generates() -> None:
    # Given the committed document
    committed = (REPO_ROOT / COMMITTED).read_text(encoding="utf-8")

    # When the document is generated from the routes
    generated = render()

    # Then they are the same, byte for byte
    assert committed == generated, (
        f"{COMMITTED} differs from the routes in concierge/api.py: regenerate it with "
        "`make openapi` (or `.venv/bin/python -m concierge_cli.openapi docs/openapi.json`) "
        "and commit it"
    )


def test_the_generator_writes_the_rendered_document(tmp_path: Path) -> None:
    # When the generator writes the document to a file
    target = tmp_path / "openapi.json"
    status = main([str(target)])

    # Then the file holds the rendered document, ending with a newline
    assert status == 0
    assert target.read_text(encoding="utf-8") == render()
    assert render().endswith("}\n")


def test_every_route_and_each_of_its_statuses_is_documented(document: dict[str, Any]) -> None:
    # When the document's operations are listed
    operations = _operations(document)

    # Then they are the routes, each with the statuses it can answer, and no 422
    assert set(operations) == set(OPERATIONS)
    for key, statuses in OPERATIONS.items():
        assert set(operations[key]["responses"]) == statuses, key


def test_errors_are_documented_in_the_error_shape_with_the_request_id(
    document: dict[str, Any],
) -> None:
    # When each documented response is read
    for key, operation in _operations(document).items():
        for status, response in operation["responses"].items():
            # Then every one carries x-request-id, and every error is an ErrorResponse
            assert "x-request-id" in response["headers"], (key, status)
            schema = response["content"]["application/json"]["schema"]
            if not status.startswith("2"):
                assert schema == ERROR_SCHEMA, (key, status)
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "request_id"}


def test_the_request_and_responses_are_the_contracts_models(document: dict[str, Any]) -> None:
    # When the models of POST /chat are read
    schemas = document["components"]["schemas"]
    chat = _operations(document)[("post", "/chat")]

    # Then the body is ChatRequest with its limits, and the answer has every field, required
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/ChatRequest"
    question = schemas["ChatRequest"]["properties"]["question"]
    assert (question["minLength"], question["maxLength"]) == (1, 4000)
    assert schemas["ChatRequest"]["required"] == ["question"]
    assert set(schemas["ChatResponse"]["required"]) == {
        "answer",
        "citations",
        "category",
        "language",
        "cached",
        "session_id",
        "request_id",
        "usage",
    }
    assert set(schemas["Usage"]["required"]) == {
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
    assert {parameter["name"] for parameter in chat["parameters"]} == {"cache-control"}


def test_feedback_is_created_with_a_201_echoing_the_rating_and_its_variant(
    document: dict[str, Any],
) -> None:
    # When the models of POST /feedback and of the erasure of a user are read
    schemas = document["components"]["schemas"]
    rate = _operations(document)[("post", "/feedback")]

    # Then the body names an answer by a request id, a rating up or down and an optional
    # comment of at most 1000 characters, and the 201 echoes the rating with the variant
    body = rate["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/FeedbackRequest"
    request = schemas["FeedbackRequest"]
    assert set(request["required"]) == {"request_id", "rating"}
    assert request["properties"]["request_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert request["properties"]["rating"]["enum"] == ["up", "down"]
    assert "200" not in rate["responses"]
    created = rate["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"] == "#/components/schemas/FeedbackReceipt"
    assert set(schemas["FeedbackReceipt"]["required"]) == {"request_id", "rating", "variant"}
    # And erasing a user counts their ratings too
    assert "feedback" in schemas["UserDeletion"]["required"]


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    # When every $ref of the document is collected
    references: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                references.add(node["$ref"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)

    # Then each names a schema of the document, and no schema is left unused
    schemas = set(document["components"]["schemas"])
    named = {reference.removeprefix("#/components/schemas/") for reference in references}
    assert named <= schemas
    assert schemas - named == set()


def test_every_route_but_health_needs_a_bearer_token(document: dict[str, Any]) -> None:
    # When the security of each operation is read
    secured = {key: op.get("security") for key, op in _operations(document).items()}

    # Then a JWT bearer scheme guards every route but GET /health, and a 429 says when to retry
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {key for key, security in secured.items() if not security} == {("get", "/health")}
    chat_429 = _operations(document)[("post", "/chat")]["responses"]["429"]
    assert "Retry-After" in chat_429["headers"]
