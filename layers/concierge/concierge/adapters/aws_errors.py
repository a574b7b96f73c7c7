"""What an AWS ClientError means for a retry: one reading for every adapter.

Codes are matched case-insensitively (providers and SDK versions disagree on capitalisation),
and any 5xx is worth another try whatever its code says.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

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
