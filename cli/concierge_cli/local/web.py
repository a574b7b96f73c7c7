"""The web chat page (`web/`) as the local server serves it, with the headers CloudFront adds.

In AWS the page is a private S3 bucket behind CloudFront, whose response-headers policy
(template.yaml, `WebHeadersPolicy`) sets the security headers below; tests/infra checks that the
two agree. Locally `concierge serve` serves the same files at `/` next to the API, with the same
headers, and writes the page's `config.json` itself (in AWS, `concierge web publish` writes it
from the stack's outputs):

    {"api_url": "", "auth": "off" | "local" | "cognito", "cognito_domain"?, "client_id"?}

`api_url` empty means the API is the page's own origin. Only the files directly in `web/` whose
names look like page assets are served: no folders, no dot files, nothing outside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WEB_DIR = Path("web")
CONFIG_NAME = "config.json"
INDEX_NAME = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_ASSET_NAME = re.compile(r"^/([a-z0-9][a-z0-9-]*\.(?:html|js|css|png|svg|txt))$")

# Content-Security-Policy, directive by directive. No inline script or style, no eval, nothing
# from another origin but the API and the sign-in endpoint (`connect-src`), no frames, no
# plug-ins, and Trusted Types required: assigning a string to innerHTML (or any other HTML sink)
# throws, so model text can only ever reach the page as text.
CSP_DIRECTIVES: dict[str, str] = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
    "require-trusted-types-for": "'script'",
    "trusted-types": "'none'",
}
HSTS = "max-age=63072000; includeSubDomains"
# The other headers of the CloudFront response-headers policy, as they reach the browser.
SECURITY_HEADERS: dict[str, str] = {
    "strict-transport-security": HSTS,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def page_files(directory: Path) -> list[Path]:
    """The page's files in `directory`: those the local server serves and the deploy uploads
    (directly in it, named like page assets; no folders, no dot files)."""
    return sorted(f for f in directory.iterdir() if f.is_file() and _ASSET_NAME.match(f"/{f.name}"))


def content_security_policy(connect: tuple[str, ...] = ()) -> str:
    """The page's policy; `connect` adds origins the page may call (the API, the sign-in)."""
    directives = dict(CSP_DIRECTIVES)
    directives["connect-src"] = " ".join((directives["connect-src"], *connect))
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def parse_policy(policy: str) -> dict[str, str]:
    """A Content-Security-Policy header back into {directive: value}."""
    parsed = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            parsed[name] = value.strip()
    return parsed


@dataclass(frozen=True)
class StaticReply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class WebSite:
    """The page's files in `root` and the configuration it is given."""

    root: Path
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, repository: Path, auth: str, **config: Any) -> WebSite:
        """The repository's `web/` for a local server with auth `auth`; `config` adds to or
        replaces what config.json says (e.g. a sign-in endpoint)."""
        return cls(repository / WEB_DIR, {"api_url": "", "auth": auth, **config})

    def headers(self) -> dict[str, str]:
        domain = str(self.config.get("cognito_domain") or "")
        connect = tuple(filter(None, (str(self.config.get("api_url") or ""), domain)))
        return {
            "content-security-policy": content_security_policy(tuple(_origin(u) for u in connect)),
            **SECURITY_HEADERS,
            "cache-control": "no-cache",
        }

    def reply(self, path: str) -> StaticReply | None:
        """The reply to `GET path` when it names the page or one of its files; None when it
        is not the page's (it goes to the API)."""
        if path == "/":
            path = "/" + INDEX_NAME
        if path == "/" + CONFIG_NAME:
            body = json.dumps(dict(self.config)).encode()
            return self._ok(body, CONTENT_TYPES[".json"])
        match = _ASSET_NAME.match(path)
        if match is None:
            return None
        file = self.root / match.group(1)
        try:
            body = file.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return self._ok(body, CONTENT_TYPES[file.suffix])

    def _ok(self, body: bytes, content_type: str) -> StaticReply:
        return StaticReply(200, {"content-type": content_type, **self.headers()}, body)


def _origin(url: str) -> str:
    """`https://host[:port]` of a URL (a CSP source that matches any path on it)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else url
