"""Where the eval sends its questions: the chain in this process (the local runtime over the
sample knowledge base, offline models unless the environment names others), or an HTTP API —
`concierge serve`, or a deployed stack with a bearer token.

A case is asked as its variant's: the body names the variant (`"variant"`, honoured for
administrators: the local user is one, a deployed stack needs an admin's token) and bypasses the
cache, so every case costs and takes what a first answer costs and takes.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

REQUEST_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    seconds: float


class Target(Protocol):
    def chat(self, body: Mapping[str, Any]) -> Reply: ...


class InProcess:
    """The local runtime: the same chain, state machine and handlers as `concierge serve`."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def chat(self, body: Mapping[str, Any]) -> Reply:
        from concierge_cli.local.auth import as_local_user
        from concierge_cli.local.server import http_api_event

        event = as_local_user(
            http_api_event(
                "POST",
                "/chat",
                {"content-type": "application/json"},
                json.dumps(body).encode("utf-8"),
            )
        )
        started = time.perf_counter()
        response = self._runtime.api(event)
        seconds = time.perf_counter() - started
        return Reply(int(response["statusCode"]), json.loads(response["body"]), seconds)


class Http:
    """An HTTP API at `url` (its base, e.g. http://127.0.0.1:3000 or a stack's ApiUrl)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._parts = parts
        self._base = parts.path.rstrip("/")
        self._token = token

    def chat(self, body: Mapping[str, Any]) -> Reply:
        parts = self._parts
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(parts.hostname or "", parts.port, timeout=REQUEST_TIMEOUT_S)
        headers = {"content-type": "application/json"}
        if self._token:
            headers["authorization"] = f"Bearer {self._token}"
        try:
            started = time.perf_counter()
            connection.request("POST", f"{self._base}/chat", json.dumps(body), headers)
            response = connection.getresponse()
            data = response.read()
            seconds = time.perf_counter() - started
        finally:
            connection.close()
        try:
            document = json.loads(data) if data else {}
        except json.JSONDecodeError:
            document = {
                "error": {"code": "not_json", "message": data[:200].decode(errors="replace")}
            }
        return Reply(response.status, document, seconds)


@contextmanager
def in_process(root: Path, variants: Mapping[str, Mapping[str, Any]]) -> Iterator[InProcess]:
    """The sample knowledge base indexed into a temporary folder and a local runtime over it,
    serving the eval's `variants` (as environment dev's A/B variants, CONCIERGE_VARIANTS_FILE)."""
    import logging

    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index
    from concierge_cli.local.runtime import LocalRuntime

    # The emulator logs an ERROR for every expected evaluation failure (a cache miss).
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="concierge-eval-") as work:
        index = build_index([root / "knowledge" / "sample"])
        index_path = Path(work) / "index.json"
        write_index(index, index_path)
        variants_file = Path(work) / "variants.toml"
        variants_file.write_text(variants_toml("dev", variants), encoding="utf-8")
        environ = {"CONCIERGE_VARIANTS_FILE": str(variants_file), "CONCIERGE_PROMPT_LABEL": "dev"}
        with LocalRuntime(root, index_path, index.kb_version, environ=environ) as runtime:
            yield InProcess(runtime)


def variants_toml(label: str, variants: Mapping[str, Mapping[str, Any]]) -> str:
    """A variants file for environment `label` with `variants` (equal weights)."""
    lines = []
    for name, variant in variants.items():
        lines.append(f"[{label}.{json.dumps(name)}]")
        lines.append("weight = 1")
        for field in ("prompts", "models"):
            chosen = variant.get(field) or {}
            if chosen:
                pairs = ", ".join(f"{key} = {json.dumps(value)}" for key, value in chosen.items())
                lines.append(f"{field} = {{ {pairs} }}")
        lines.append("")
    text = "\n".join(lines)
    tomllib.loads(text)  # what is written must read back
    return text
