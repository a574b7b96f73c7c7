"""What an AWS ClientError means for a retry: one reading for every adapter.

Codes are matched case-insensitively (providers and SDK versions disagree on capitalisation),
and any 5xx is worth another try whatever its code says.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from concierge.errors import ModelInvocationError, ModelThrottledError, ModelTimeoutError

RETRYABLE_CODES = frozenset(
    code.lower()
    for code in (
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerException",
        "InternalDependencyException",
        "BadGatewayException",
        "ModelNotReadyException",
    )
)
TIMEOUT_CODES = frozenset(("modeltimeoutexception",))
_SERVER_ERROR = 500


@dataclass(frozen=True)
class AwsError:
    code: str  # lower case; "" when the response had none
    status: int  # the HTTP status of the response; 0 when unknown

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES or self.status >= _SERVER_ERROR

    @property
    def timed_out(self) -> bool:
        return self.code in TIMEOUT_CODES

    def describe(self) -> str:
        return self.code or (f"HTTP {self.status}" if self.status else "unknown error")


def aws_error(exc: ClientError) -> AwsError:
    response = exc.response
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return AwsError(str(response.get("Error", {}).get("Code", "")).lower(), int(status))


def model_error(exc: ClientError, spec: str) -> Exception:
    """The typed error of a failed model call (Converse, InvokeModel, InvokeEndpoint): timed
    out, worth a retry on the same or the next model, or a rejection no retry will fix."""
    error = aws_error(exc)
    if error.timed_out:
        return ModelTimeoutError(f"{spec} timed out ({error.describe()})")
    if error.retryable:
        return ModelThrottledError(f"{spec} is throttled or unavailable ({error.describe()})")
    return ModelInvocationError(f"{spec} rejected the request ({error.describe()})")
