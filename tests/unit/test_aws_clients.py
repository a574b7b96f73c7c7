import pytest

from concierge.adapters.aws import aws_client, reset_clients


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without credentials botocore would ask the instance metadata service over the network.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_clients()


def test_model_clients_make_one_attempt_and_honour_the_budget() -> None:
    client = aws_client("bedrock-runtime", read_timeout=7.0)
    assert client.meta.config.read_timeout == 7.0
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_clients_honour_a_service_specific_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    reset_clients()
    assert aws_client("dynamodb").meta.endpoint_url == "http://127.0.0.1:8000"
    assert aws_client("s3").meta.endpoint_url == "http://127.0.0.1:4566"
    reset_clients()
