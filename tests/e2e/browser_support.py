"""The web page's browser tests: the system Chromium driven by Playwright, and a stand-in for
Cognito's hosted UI on loopback.

Playwright never downloads a browser here: it launches Debian's `chromium` (`executable_path`),
headless, without the sandbox when running as root (CI does), and without the background
traffic a browser makes on its own. Without Chromium or Playwright the browser tests are
skipped, with one line saying so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from concierge_cli.local.auth import AUDIENCE, SigningKey, mint

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

# Debian's package first; GitHub's Ubuntu runners carry Google Chrome instead.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
# Headless, and quiet: no component updates, sync, translation or other requests of its own,
# so that every request a test sees is the page's.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]
SKIP_REASON = (
    "web page browser tests skipped: no system Chromium (apt-get install chromium) "
    "or no Playwright (pip install -e .[dev])"
)


def chromium_or_skip() -> str:
    """The system Chromium's path; skips the calling test module (one line) without it."""
    path = next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        pytest.skip(SKIP_REASON, allow_module_level=True)
    return path


def launch_arguments() -> list[str]:
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    return [*sandbox, *CHROMIUM_ARGS]


# -- the hosted UI's part of the OAuth 2.0 authorization code flow with PKCE ---------------------
@dataclass
class HostedUi:
    """What a Cognito user pool domain does for a public app client, on 127.0.0.1: it signs in
    `user` at once (no password page), checks the PKCE verifier against the challenge when the
    code is traded, and answers the browser's cross-origin calls as Cognito does."""

    key: SigningKey
    user: str
    client_id: str = AUDIENCE
    page_origin: str = ""
    origin: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    exchanges: list[dict[str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class _HostedUiHandler(BaseHTTPRequestHandler):
    server: _HostedUiServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        ui = self.server.ui
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if parts.path == "/oauth2/authorize":
            wanted = {"response_type": "code", "client_id": ui.client_id}
            if (
                any(query.get(k) != v for k, v in wanted.items())
                or query.get("code_challenge_method") != "S256"
            ):
                ui.refused.append(f"authorize {query}")
                self._send(HTTPStatus.BAD_REQUEST, b"invalid_request")
                return
            code = secrets.token_urlsafe(16)
            ui.codes[code] = query
            target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            self._send(HTTPStatus.FOUND, b"", {"location": target})
        elif parts.path == "/logout":
            ui.logouts.append(query)
            self._send(HTTPStatus.FOUND, b"", {"location": query["logout_uri"]})
        else:
            self._send(HTTPStatus.NOT_FOUND, b"")

    def do_POST(self) -> None:
        ui = self.server.ui
        length = int(self.headers.get("content-length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        if path == "/oauth2/revoke":
            ui.revoked.append(form.get("token", ""))
            self._send(HTTPStatus.OK, b"")
            return
        if path != "/oauth2/token":
            self._send(HTTPStatus.NOT_FOUND, b"")
            return
        ui.exchanges.append(form)
        asked = ui.codes.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            asked is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != ui.client_id
            or form.get("redirect_uri") != asked["redirect_uri"]
            or challenge != asked["code_challenge"]
        ):
            ui.refused.append(f"token {form}")
            self._send(HTTPStatus.BAD_REQUEST, b'{"error": "invalid_grant"}')
            return
        tokens = {
            "access_token": mint(ui.user, ttl_seconds=600, key=ui.key, audience=ui.client_id),
            "id_token": mint(ui.user, ttl_seconds=600, key=ui.key, audience=ui.client_id),
            "refresh_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 600,
        }
        self._send(HTTPStatus.OK, json.dumps(tokens).encode(), {"content-type": "application/json"})

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        # Cognito's token and revoke endpoints answer browsers of other origins.
        self.send_header("access-control-allow-origin", self.server.ui.page_origin)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HostedUiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ui: HostedUi) -> None:
        super().__init__(("127.0.0.1", 0), _HostedUiHandler)
        self.ui = ui


@contextmanager
def hosted_ui(ui: HostedUi) -> Iterator[HostedUi]:
    """`ui` served on an ephemeral port of 127.0.0.1 (its `origin` set) while the block runs."""
    server = _HostedUiServer(ui)
    ui.origin = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="hosted-ui", daemon=True)
    thread.start()
    try:
        yield ui
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
