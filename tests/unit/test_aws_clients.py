import pytest

from concierge.adapters.aws import aws_client, reset_clients


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without credentials botocore would ask the instance metadata service over the network.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_clients()


def test_model_clients_make_one_attempt_and_honour_the_budget() -> None:
    # When a model client is made with a seven-second budget
    client = aws_client("bedrock-runtime", read_timeout=7.0)

    # Then it waits at most that long, and never retries on its own
    assert client.meta.config.read_timeout == 7.0
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_clients_honour_a_service_specific_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an endpoint for DynamoDB and a general one for everything else
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    reset_clients()

    # When clients are made for DynamoDB and for S3
    dynamodb = aws_client("dynamodb")
    s3 = aws_client("s3")

    # Then DynamoDB uses its own endpoint and S3 the general one
    assert dynamodb.meta.endpoint_url == "http://127.0.0.1:8000"
    assert s3.meta.endpoint_url == "http://127.0.0.1:4566"
    reset_clients()


def test_the_chain_executor_starts_an_execution_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the api function's settings (a state machine, synchronous executions)
    from concierge import wiring

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv(
        "CONCIERGE_STATE_MACHINE_ARN",
        "arn:aws:states:eu-west-1:111122223333:stateMachine:concierge-chat",
    )
    wiring.reset()

    # When the executor is built
    client = wiring.executor()._client

    # Then its Step Functions client never retries StartSyncExecution on its own (a retry could
    # run the chain twice), and it waits out the whole request budget
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.config.read_timeout > 27
    wiring.reset()
