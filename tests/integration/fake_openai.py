"""A tiny OpenAI-compatible server on 127.0.0.1 whose replies the test scripts in advance.

with FakeOpenAIServer() as server:
    server.reply(200, completion("Hello"))
    server.reply(503, {"error": "overloaded"})
    server.reply_after(1.0, 200, completion("too late"))
    ... point the adapter at server.base_url ...
    server.requests  # what arrived, in order
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class ScriptedReply:
    status: int
    body: bytes
    delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    # Header names in lower case.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# When nothing is scripted: a status no adapter retries, so a forgotten script fails loudly.
_UNSCRIPTED = ScriptedReply(418, b'{"error": "no scripted reply left"}')


def completion(
    text: str, usage: dict[str, int] | None = None, model: str = "fake-model"
) -> dict[str, Any]:
    """A chat.completion object as OpenAI-compatible servers return it."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


class FakeOpenAIServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._replies: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        # Set on close: wakes handlers that are still holding back a delayed reply.
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # A short poll interval keeps shutdown (which waits for one poll) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def reply(self, status: int, body: Any) -> None:
        """Script the next reply: a JSON body with this status."""
        self.reply_raw(status, json.dumps(body).encode("utf-8"))

    def reply_raw(self, status: int, body: bytes) -> None:
        """Script the next reply with a body sent as is (for malformed JSON)."""
        with self._lock:
            self._replies.append(ScriptedReply(status, body))

    def reply_after(self, delay_s: float, status: int, body: Any) -> None:
        """Script the next reply, held back for `delay_s` seconds (to force a client timeout)."""
        with self._lock:
            self._replies.append(ScriptedReply(status, json.dumps(body).encode("utf-8"), delay_s))

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _next(self, request: RecordedRequest) -> ScriptedReply:
        with self._lock:
            self.requests.append(request)
            return self._replies.popleft() if self._replies else _UNSCRIPTED

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                recorded = RecordedRequest(
                    method="POST",
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
                scripted = server._next(recorded)
                if scripted.delay_s and server._closing.wait(scripted.delay_s):
                    return
                try:
                    self.send_response(scripted.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(scripted.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(scripted.body)
                except OSError:
                    # The client gave up (timed out) before the reply: nothing to deliver.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests assert on `requests`, not on the access log."""

        return Handler
