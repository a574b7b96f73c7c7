"""Bad requests are refused with 400/413 in the error shape, and never start the chain."""

from __future__ import annotations

import json
import socket

import pytest
from e2e.http_support import (
    ChatApi,
    assert_error_reply,
    executions,
    history_items,
    json_body_of_size,
)

from concierge_cli.local.runtime import LocalRuntime


def _json(document: object) -> bytes:
    return json.dumps(document).encode("utf-8")


BAD_REQUESTS = {
    # Not JSON at all
    "empty-body": b"",
    "not-json": b"{not json",
    "truncated-json": b'{"question": "What do you sell?"',
    "trailing-comma": b'{"question": "What do you sell?",}',
    # JSON, but not an object
    "array": _json(["What do you sell?"]),
    "string": _json("What do you sell?"),
    "number": _json(42),
    "null": _json(None),
    "boolean": _json(True),
    # The question
    "missing-question": _json({"session_id": "abc"}),
    "empty-question": _json({"question": ""}),
    "question-number": _json({"question": 42}),
    "question-list": _json({"question": ["What do you sell?"]}),
    "question-null": _json({"question": None}),
    "question-object": _json({"question": {"text": "What do you sell?"}}),
    "question-boolean": _json({"question": True}),
    "question-4001-chars": _json({"question": "a" * 4001}),
    "question-4001-non-ascii-chars": _json({"question": "ü" * 4001}),
    # The session id
    "session-empty": _json({"question": "What do you sell?", "session_id": ""}),
    "session-129-chars": _json({"question": "What do you sell?", "session_id": "a" * 129}),
    "session-with-space": _json({"question": "What do you sell?", "session_id": "my session"}),
    "session-with-slash": _json({"question": "What do you sell?", "session_id": "a/b"}),
    "session-with-newline": _json({"question": "What do you sell?", "session_id": "abc\n"}),
    "session-number": _json({"question": "What do you sell?", "session_id": 42}),
    "session-list": _json({"question": "What do you sell?", "session_id": ["abc"]}),
    # Not UTF-8
    "latin-1": '{"question": "¿Qué vendéis?"}'.encode("latin-1"),
    "invalid-utf8-bytes": b'{"question": "What do you sell\xff\xfe?"}',
}

TOO_LARGE = {
    "70000-bytes": json_body_of_size(70_000),
    "one-byte-over-64KiB": json_body_of_size(65_537),
    # Fewer than 64 Ki characters, but more than 64 KiB: the limit is on bytes.
    "70000-bytes-of-multibyte-chars": json_body_of_size(70_000, filler="€"),
}


@pytest.mark.parametrize("body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_is_400_with_the_error_shape(api: ChatApi, body: bytes) -> None:
    # When a malformed request is posted
    reply = api.post_raw(body)

    # Then it is refused as a bad request, in the error shape, without internals
    assert_error_reply(reply, 400)


@pytest.mark.parametrize("body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_starts_no_execution(
    api: ChatApi, service_runtime: LocalRuntime, body: bytes
) -> None:
    # Given the executions so far (the server is shared within this module)
    before = executions(service_runtime)

    # When a malformed request is posted
    api.post_raw(body)

    # Then the chain never ran: no new execution, no turn in the (emptied) history
    assert executions(service_runtime) == before
    assert history_items(service_runtime) == []


@pytest.mark.parametrize("body", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_a_body_over_64_kib_is_413_with_the_error_shape(api: ChatApi, body: bytes) -> None:
    # When an otherwise valid request larger than 64 KiB is posted
    reply = api.post_raw(body)

    # Then it is refused as too large, in the error shape
    assert_error_reply(reply, 413)


@pytest.mark.parametrize("body", TOO_LARGE.values(), ids=TOO_LARGE.keys())
def test_a_body_over_64_kib_starts_no_execution(
    api: ChatApi, service_runtime: LocalRuntime, body: bytes
) -> None:
    # Given the executions so far (the server is shared within this module)
    before = executions(service_runtime)

    # When an oversized request is posted
    api.post_raw(body)

    # Then the chain never ran
    assert executions(service_runtime) == before
    assert history_items(service_runtime) == []


def test_a_valid_request_does_run_the_chain_once(
    api: ChatApi, service_runtime: LocalRuntime
) -> None:
    # Control for the checks above: the probes do see a chain that ran.
    before = executions(service_runtime)

    # When a valid request is posted
    api.ask("What do you sell?", session_id="control")

    # Then exactly one more execution ran, and it recorded one turn
    assert len(executions(service_runtime)) == len(before) + 1
    assert len(history_items(service_runtime)) == 1


@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", "²", "12 34"])
def test_a_content_length_that_is_not_a_number_is_400_and_the_connection_closed(
    api: ChatApi, service_runtime: LocalRuntime, declared: str
) -> None:
    # Given the executions so far
    before = executions(service_runtime)

    # When a request declares a body length that is not a number
    request = (
        f"DELETE /sessions/s1 HTTP/1.1\r\nHost: {api.host}\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection((api.host, api.port), timeout=10) as connection:
        connection.sendall(request.encode("utf-8"))
        received = b""
        while chunk := connection.recv(4096):  # the server closes the connection after it
            received += chunk

    # Then it is refused as a bad request in the error shape, before the function
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["code"] == "invalid_request"
    assert executions(service_runtime) == before
