"""The contract's answers other than 200: status, error code, message, and the error body.

Every failure is `{"error": {"code", "message", "request_id"}}`; the names of the chain's errors
(Python exception classes raised by the steps, and Step Functions' own) map to statuses here.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import Response

from concierge.models.http import ErrorDetail, ErrorResponse
from concierge.observability import logger

JSON = "application/json"
_RETRY_SOON = "Please retry in a few seconds."
_TIMEOUT = (504, "timeout", "The answer took too long. Please retry.")
_KNOWLEDGE_BASE = "knowledge_base_unavailable"


@dataclass(frozen=True)
class Failure:
    """One answer of the contract other than 200."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def error(self) -> ApiError:
        """A fresh exception to raise (the templates below are shared)."""
        return ApiError(self)

    def body(self, request_id: str) -> dict[str, Any]:
        detail = ErrorDetail(code=self.code, message=self.message, request_id=request_id)
        return ErrorResponse(error=detail).model_dump(mode="json")

    def response(self, request_id: str) -> Response[dict[str, Any]]:
        """As the answer of a route or an exception handler."""
        return Response(
            status_code=self.status,
            content_type=JSON,
            body=self.body(request_id),
            headers=dict(self.headers),
        )

    def bare_response(self, request_id: str) -> dict[str, Any]:
        """As a Lambda proxy response, for what fails before (or outside) the resolver."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": JSON, **self.headers},
            "body": json.dumps(self.body(request_id), ensure_ascii=False),
            "isBase64Encoded": False,
        }


class ApiError(Exception):
    """Raised to answer with a `Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure(status: int, code: str, message: str) -> Failure:
    return Failure(status, code, message)


# Error names raised by steps (concierge.errors) and by Step Functions, to HTTP statuses.
CHAIN_FAILURES: dict[str, Failure] = {
    "ModelThrottledError": failure(
        503, "model_unavailable", f"The language model is busy. {_RETRY_SOON}"
    ),
    "ModelTimeoutError": failure(*_TIMEOUT),
    "BudgetExceededError": failure(*_TIMEOUT),
    "States.Timeout": failure(*_TIMEOUT),
    "ModelInvocationError": failure(502, "model_error", "The language model rejected the request."),
    "RetrievalError": failure(
        503, _KNOWLEDGE_BASE, "The knowledge base cannot be searched right now."
    ),
    "KnowledgeBaseThrottledError": failure(
        503, _KNOWLEDGE_BASE, f"The knowledge base is busy. {_RETRY_SOON}"
    ),
    "KnowledgeBaseTimeoutError": failure(
        504, "timeout", "The knowledge base took too long to answer. Please retry."
    ),
    "IndexNotFoundError": failure(503, _KNOWLEDGE_BASE, "The knowledge base is not indexed yet."),
    "ConfigurationError": failure(
        500, "misconfigured", "The service is misconfigured; the operators have been told."
    ),
    "Lambda.TooManyRequestsException": failure(503, "busy", f"The service is busy. {_RETRY_SOON}"),
}
INTERNAL = failure(500, "internal_error", "Something went wrong while answering. Please retry.")
MISCONFIGURED = CHAIN_FAILURES["ConfigurationError"]
NOT_JSON = failure(400, "invalid_json", "The body must be a UTF-8 JSON object.")
UNAUTHORIZED = failure(401, "unauthorized", "Sign in: this route needs a valid bearer token.")
FORBIDDEN = failure(403, "forbidden", "This route is for administrators.")
STORE_UNAVAILABLE = failure(
    503, "store_unavailable", f"The tables cannot be reached now. {_RETRY_SOON}"
)


def invalid_request(message: str) -> Failure:
    return failure(400, "invalid_request", message)


def not_found(what: str) -> Failure:
    return failure(404, "not_found", what)


def conflict(what: str) -> Failure:
    return failure(409, "conflict", what)


def budget_exceeded(retry_after_s: int) -> Failure:
    return Failure(
        429,
        "budget_exceeded",
        "Your daily budget is spent. It is renewed at midnight UTC.",
        {"Retry-After": str(retry_after_s)},
    )


def cause_name(error: BaseException) -> str:
    """The failure's name and its cause's (a botocore ClientError's code is in its name); never
    its message, which may quote keys (user ids)."""
    cause = error.__cause__
    return type(error).__name__ + (f" from {type(cause).__name__}" if cause else "")


def log_unexpected(error: BaseException) -> None:
    # The name and where it was raised, not the message: a pydantic error quotes its input,
    # which may be the question or the answer.
    logger.error(
        "unhandled error in the api function",
        extra={
            "error": type(error).__name__,
            "trace": "".join(traceback.format_tb(error.__traceback__)),
        },
    )
