"""The OpenAI-compatible adapter against a local fake server (Ollama, vLLM, llama.cpp speak this)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fake_openai import FakeOpenAIServer, completion

from concierge.adapters.llm.openai_compat import OpenAICompatibleModel
from concierge.adapters.llm.port import ModelRequest, estimate_tokens
from concierge.errors import (
    ConfigurationError,
    ModelInvocationError,
    ModelThrottledError,
    ModelTimeoutError,
)

MODEL = "llama3.2:3b"
SYSTEM = "Answer from the passages."
PROMPT = "Question: what do you sell?"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    # A developer's HTTP proxy must not swallow requests to the local fake.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _request(stop: tuple[str, ...] = ("</answer>",), timeout_s: float = 5.0) -> ModelRequest:
    return ModelRequest(
        task="answer",
        system=SYSTEM,
        prompt=PROMPT,
        max_tokens=800,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=stop,
        timeout_s=timeout_s,
    )


def test_request_carries_the_chat_and_the_key(server: FakeOpenAIServer) -> None:
    # Given a server that reports usage, and a model configured with an API key
    server.reply(
        200, completion("We sell tents. [1]", {"prompt_tokens": 42, "completion_tokens": 7})
    )
    model = OpenAICompatibleModel(MODEL, server.base_url, api_key="sk-local")

    # When it generates
    reply = model.generate(_request())

    # Then the request is one non-streaming chat completion with the bearer key
    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-local"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 800,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["</answer>"],
        "stream": False,
    }
    # And the reply carries the reported usage
    assert reply.text == "We sell tents. [1]"
    assert (reply.input_tokens, reply.output_tokens, reply.estimated) == (42, 7, False)
    assert reply.model == f"openai:{MODEL}" == model.spec


def test_no_key_no_authorization_header_and_no_empty_stop(server: FakeOpenAIServer) -> None:
    # Given a model without an API key, on a base URL with a trailing slash
    server.reply(200, completion("Tents.", {"prompt_tokens": 3, "completion_tokens": 1}))
    model = OpenAICompatibleModel(MODEL, server.base_url + "/")

    # When it generates without stop sequences
    model.generate(_request(stop=()))

    # Then the slash does not double up in the path, and the request has neither an
    # authorization header nor an empty stop list
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert "authorization" not in sent.headers
    assert "stop" not in sent.json()


def test_missing_usage_is_estimated(server: FakeOpenAIServer) -> None:
    # Given a server that does not report usage
    server.reply(200, completion("We sell tents and stoves."))
    model = OpenAICompatibleModel(MODEL, server.base_url)

    # When the model generates
    reply = model.generate(_request())

    # Then the reply's usage is estimated from the texts
    assert reply.text == "We sell tents and stoves."
    assert reply.estimated is True
    assert reply.input_tokens == estimate_tokens(f"{SYSTEM}\n\n{PROMPT}")
    assert reply.output_tokens == estimate_tokens("We sell tents and stoves.")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, ModelThrottledError),
        (500, ModelThrottledError),
        (502, ModelThrottledError),
        (503, ModelThrottledError),
        (504, ModelThrottledError),
        (400, ModelInvocationError),
        (401, ModelInvocationError),
        (404, ModelInvocationError),
    ],
)
def test_http_errors_become_typed_errors(
    server: FakeOpenAIServer, status: int, error: type[Exception]
) -> None:
    # Given a server failing with the status, its error body echoing the prompt (as some
    # servers do)
    server.reply(status, {"error": {"message": f"cannot handle {PROMPT}"}})
    model = OpenAICompatibleModel(MODEL, server.base_url)

    # When generating fails
    with pytest.raises(error) as raised:
        model.generate(_request())

    # Then the typed error names the model and the status, without repeating the prompt
    message = str(raised.value)
    assert f"openai:{MODEL}" in message
    assert f"HTTP {status}" in message
    assert PROMPT not in message


def test_slow_server_times_out(server: FakeOpenAIServer) -> None:
    # Given a server that replies after a second
    server.reply_after(1.0, 200, completion("too late"))
    model = OpenAICompatibleModel(MODEL, server.base_url)

    # When / Then generating with 0.3 seconds left times out
    with pytest.raises(ModelTimeoutError):
        model.generate(_request(timeout_s=0.3))


def test_no_time_left_times_out_without_calling(server: FakeOpenAIServer) -> None:
    # Given a model of the server
    model = OpenAICompatibleModel(MODEL, server.base_url)

    # When / Then generating with no time left times out
    with pytest.raises(ModelTimeoutError):
        model.generate(_request(timeout_s=0))

    # And the server was never called
    assert server.requests == []


def test_connection_refused_is_retryable(closed_port: int) -> None:
    # Given a model of a server that is not running
    model = OpenAICompatibleModel(MODEL, f"http://127.0.0.1:{closed_port}/v1")

    # When / Then generating raises the retryable error
    with pytest.raises(ModelThrottledError):
        model.generate(_request())


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b'{"choices": []}',
        b'{"choices": [{"message": {"role": "assistant", "content": null}}]}',
        b'{"object": "chat.completion"}',
        b"[]",
    ],
    ids=["not-json", "no-choices", "null-content", "no-choices-key", "not-an-object"],
)
def test_malformed_reply_is_an_invocation_error(server: FakeOpenAIServer, body: bytes) -> None:
    # Given a server whose successful reply is not a usable chat completion
    server.reply_raw(200, body)
    model = OpenAICompatibleModel(MODEL, server.base_url)

    # When / Then generating raises an invocation error
    with pytest.raises(ModelInvocationError):
        model.generate(_request())


@pytest.mark.parametrize("base_url", ["file:///etc/passwd", "127.0.0.1:11434/v1", "ftp://host/v1"])
def test_base_url_must_be_http(base_url: str) -> None:
    # When / Then a model on a base URL that is not http(s) is a configuration error
    with pytest.raises(ConfigurationError):
        OpenAICompatibleModel(MODEL, base_url)
