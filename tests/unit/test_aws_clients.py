from concierge.adapters.aws import aws_client, reset_clients


def test_model_clients_make_one_attempt_and_honour_the_budget() -> None:
    reset_clients()
    client = aws_client("bedrock-runtime", read_timeout=7.0)
    assert client.meta.config.read_timeout == 7.0
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_clients_honour_a_service_specific_endpoint(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    reset_clients()
    assert aws_client("dynamodb").meta.endpoint_url == "http://127.0.0.1:8000"
    assert aws_client("s3").meta.endpoint_url == "http://127.0.0.1:4566"
    reset_clients()
