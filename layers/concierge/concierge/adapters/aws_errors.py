"""One translation of botocore failures into Concierge's typed errors, for every adapter.

    with translated(MODEL, spec):
        response = client.converse(...)

Each dependency has an error family: a timeout, "unavailable" (throttled, 5xx, unreachable:
worth a retry) and "rejected" (validation, access denied, not found: a retry will not fix it).
Codes are matched case-insensitively (providers and SDK versions disagree on capitalisation),
and any 5xx is worth another try whatever its code says. AWS's own error message is never
copied into ours: it may quote the question.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from concierge.errors import (
    ConciergeError,
    KnowledgeBaseThrottledError,
    KnowledgeBaseTimeoutError,
    ModelInvocationError,
    ModelThrottledError,
    ModelTimeoutError,
    RetrievalError,
    StoreUnavailableError,
)

RETRYABLE_CODES = frozenset(
    code.lower()
    for code in (
        "ThrottlingException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "InternalDependencyException",
        "BadGatewayException",
        "ModelNotReadyException",
    )
)
TIMEOUT_CODES = frozenset(("modeltimeoutexception",))
_SERVER_ERROR = 500


@dataclass(frozen=True)
class ErrorFamily:
    """The typed errors of one kind of dependency."""

    timeout: type[ConciergeError]
    unavailable: type[ConciergeError]
    rejected: type[ConciergeError]


MODEL = ErrorFamily(ModelTimeoutError, ModelThrottledError, ModelInvocationError)
KNOWLEDGE_BASE = ErrorFamily(KnowledgeBaseTimeoutError, KnowledgeBaseThrottledError, RetrievalError)
# A table operation is either done or safe to run again: one error says so.
STORE = ErrorFamily(StoreUnavailableError, StoreUnavailableError, StoreUnavailableError)


@dataclass(frozen=True)
class AwsError:
    code: str  # lower case, for matching; "" when the response had none
    status: int  # the HTTP status of the response; 0 when unknown
    name: str = ""  # the code as AWS spelled it, for messages

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES or self.status >= _SERVER_ERROR

    @property
    def timed_out(self) -> bool:
        return self.code in TIMEOUT_CODES

    def describe(self) -> str:
        if self.name and self.status:
            return f"{self.name}, HTTP {self.status}"
        return self.name or (f"HTTP {self.status}" if self.status else "unknown error")


def aws_error(exc: ClientError) -> AwsError:
    response = exc.response
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    name = str(response.get("Error", {}).get("Code", ""))
    return AwsError(name.lower(), int(status), name)


def client_error(exc: ClientError, family: ErrorFamily, what: str) -> ConciergeError:
    """The typed error of a ClientError: timed out, worth a retry, or a rejection."""
    error = aws_error(exc)
    if error.timed_out:
        return family.timeout(f"{what} timed out ({error.describe()})")
    if error.retryable:
        return family.unavailable(f"{what} is throttled or unavailable ({error.describe()})")
    return family.rejected(f"{what} rejected the request ({error.describe()})")


# A provider's own reading of some ClientErrors (a SageMaker container's status, a hint of what
# to check), given the error, its reading and what was called; None keeps the common reading.
Refinement = Callable[[ClientError, AwsError, str], ConciergeError | None]


@contextmanager
def translated(family: ErrorFamily, what: str, refine: Refinement | None = None) -> Iterator[None]:
    """Run the block; any botocore failure leaves it as one of `family`'s errors, chained to the
    original. A read timeout is the family's timeout; anything else botocore raises without a
    response (connection refused or timed out, DNS, TLS) is "unavailable": another attempt, or
    the next model of a route, may reach it."""
    try:
        yield
    except ClientError as exc:
        refined = refine(exc, aws_error(exc), what) if refine is not None else None
        raise (refined or client_error(exc, family, what)) from exc
    except ReadTimeoutError as exc:
        raise family.timeout(f"{what} did not answer in time") from exc
    except BotoCoreError as exc:
        raise family.unavailable(f"{what} unreachable: {type(exc).__name__}") from exc
