import pytest
from botocore.exceptions import ClientError

from concierge.adapters.aws_errors import aws_error


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Op",
    )


@pytest.mark.parametrize(
    ("code", "status", "retryable", "timed_out"),
    [
        ("ThrottlingException", 429, True, False),
        ("throttlingexception", 429, True, False),  # capitalisation differs between providers
        ("ServiceUnavailableException", 503, True, False),
        ("SomethingNewException", 502, True, False),  # any 5xx, whatever its code
        ("ModelTimeoutException", 408, False, True),
        ("ValidationException", 400, False, False),
        ("AccessDeniedException", 403, False, False),
        ("ResourceNotFoundException", 404, False, False),
    ],
)
def test_what_a_client_error_means_for_a_retry(
    code: str, status: int, retryable: bool, timed_out: bool
) -> None:
    # Given a client error with this code and HTTP status
    raised = client_error(code, status)

    # When it is classified
    error = aws_error(raised)

    # Then it says whether a retry can help and whether the call timed out, by its code
    assert (error.retryable, error.timed_out) == (retryable, timed_out)
    assert error.code == code.lower()


def test_an_error_without_code_or_status_is_described_as_unknown() -> None:
    # Given a client error that carries neither a code nor a status
    raised = ClientError({"Error": {}}, "Op")

    # When it is classified
    error = aws_error(raised)

    # Then it has an empty code, status 0, and reads as an unknown error
    assert (error.code, error.status, error.describe()) == ("", 0, "unknown error")
