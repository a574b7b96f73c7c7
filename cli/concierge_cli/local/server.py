"""A local HTTP server in front of the `api` function, shaped like API Gateway's HTTP API:
each request becomes a payload-2.0 event, goes through the JWT authorizer's local stand-in
(`concierge_cli.local.auth`: the caller's claims, or a 401 before the function runs), and each
handler response becomes the HTTP reply. The web chat page (`web/`) is served at `/` next to the
API, with the security headers CloudFront adds in AWS (concierge_cli.local.web)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from concierge.api import openapi_document
from concierge_cli.local.auth import Authorizer, LocalKeys, Unauthorized
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.web import WebSite

# API Gateway refuses bodies over 10 MB before the function sees them; so do we.
MAX_GATEWAY_BODY = 10 * 1024 * 1024


def http_api_event(
    method: str, target: str, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    parts = urlsplit(target)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "version": "2.0",
        "routeKey": f"{method} {parts.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {name.lower(): value for name, value in headers.items()},
        "requestContext": {
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1"},
            "requestId": uuid.uuid4().hex,
            "stage": "$default",
            # As API Gateway stamps it: the request budget counts from here.
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def _gateway_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": uuid.uuid4().hex}}


class _Handler(BaseHTTPRequestHandler):
    server: LocalApiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if not self._page():
            self._dispatch()

    def do_HEAD(self) -> None:
        if not self._page(head=True):
            self._reply(HTTPStatus.NOT_FOUND, _gateway_error("not_found", "Not found."), head=True)

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _page(self, head: bool = False) -> bool:
        """Serve the web page's file the request names; False when it names none."""
        static = self.server.website.reply(urlsplit(self.path).path)
        if static is None:
            return False
        self.send_response(static.status)
        for name, value in static.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(static.body)))
        self.end_headers()
        if not head:
            self.wfile.write(static.body)
        if self.headers.get("content-length"):
            self.close_connection = True  # a body it came with is left unread
        return True

    def _dispatch(self) -> None:
        if self.command == "GET" and urlsplit(self.path).path == "/openapi.json":
            # The API's OpenAPI document, from the routes' code (the same as docs/openapi.json);
            # served by this server only, not a route of the deployed API.
            self._reply(HTTPStatus.OK, openapi_document())
            if self.headers.get("content-length"):
                self.close_connection = True  # a body it came with is left unread
            return
        declared = (self.headers.get("content-length") or "0").strip()
        if not (declared.isascii() and declared.isdigit()):
            # Where the body ends is unknown: refuse the request and close the connection (RFC
            # 9110, 8.6), in the error shape, before the function sees anything.
            self._reply(
                HTTPStatus.BAD_REQUEST,
                _gateway_error("invalid_request", "The Content-Length header is not a number."),
            )
            self.close_connection = True
            return
        length = int(declared)
        if length > MAX_GATEWAY_BODY:
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "Request Entity Too Large"}
            )
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        event = http_api_event(self.command, self.path, dict(self.headers.items()), body)
        try:
            authorized = self.server.authorizer.authorize(event)
        except Unauthorized as refused:
            response = refused.response  # as API Gateway: the function never sees it
        else:
            response = self.server.runtime.api(authorized)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        self.send_response(int(response.get("statusCode", 200)))
        for name, value in (response.get("headers") or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: HTTPStatus, document: dict[str, Any], head: bool = False) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Access lines carry no body, so they hold no personal data.
        if self.server.access_log:
            super().log_message(format, *args)


class LocalApiServer(ThreadingHTTPServer):
    """The API on `host:port`; without an `authorizer`, auth is off (no token needed). The web
    page comes from the repository's `web/`, told the server's auth mode, unless a `website`
    says otherwise."""

    daemon_threads = True

    def __init__(
        self,
        runtime: LocalRuntime,
        host: str,
        port: int,
        access_log: bool = True,
        authorizer: Authorizer | None = None,
        *,
        website: WebSite | None = None,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.runtime = runtime
        self.access_log = access_log
        self.authorizer = authorizer or Authorizer("off", LocalKeys.of(runtime.root))
        self.website = website or WebSite.of(runtime.root, self.authorizer.mode)
