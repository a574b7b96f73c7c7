"""`concierge` as a user runs it, for the benches that time whole processes and real servers:
the command, a clean environment on the offline models, one HTTP request on its own
connection, and `concierge serve` in its own process until it answers /health."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0
OFFLINE_MODELS = {
    f"CONCIERGE_{step}_MODEL": "offline" for step in ("CLASSIFY", "CONDENSE", "ANSWER")
}


class BenchError(RuntimeError):
    """The benchmark could not measure what it claims to."""


def command() -> list[str]:
    """The installed `concierge` script next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("concierge")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "concierge_cli.main"]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any Concierge setting, the offline models and `extra`:
    what a bench measures must not depend on the shell it was started from."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CONCIERGE_", "POWERTOOLS_"))
    }
    return {**kept, **OFFLINE_MODELS, **(extra or {})}


def concierge(
    root: Path, *argv: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """One `concierge --root ROOT ARGV...` process, its output captured."""
    return subprocess.run(
        [*command(), "--root", str(root), *argv],
        capture_output=True,
        text=True,
        env=environment(extra),
        timeout=START_TIMEOUT_S,
        check=False,
    )


def request(
    url: str,
    method: str,
    path: str,
    token: str | None = None,
    document: Any = None,
    timeout: float = REQUEST_TIMEOUT_S,
) -> tuple[int, Any, float]:
    """(status, JSON body, seconds from sending to the whole reply read) of one request on its
    own connection, as a client without keep-alive makes it."""
    host, port = url.removeprefix("http://").split(":")
    headers = {"content-type": "application/json"} if document is not None else {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps(document).encode("utf-8") if document is not None else None
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        started = time.perf_counter()
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return response.status, json.loads(data) if data else None, elapsed


@dataclass(frozen=True)
class Server:
    url: str
    log_path: Path
    # seconds from starting the process to its first 200 on /health
    start_seconds: float

    def chat_requests_served(self) -> int:
        """POST /chat lines of the access log so far."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text.count('"POST /chat ')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def serving(
    root: Path, argv: list[str], log_path: Path, extra: dict[str, str] | None = None
) -> Iterator[Server]:
    """`concierge --root ROOT serve ARGV...` on a free port, in its own process, from its first
    answer to /health until the block ends."""
    port = _free_port()
    serve = [*command(), "--root", str(root), "serve", "--host", HOST, "--port", str(port)]
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*serve, *argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment(extra),
        )
        try:
            url = f"http://{HOST}:{port}"
            while True:
                if process.poll() is not None:
                    raise BenchError(f"concierge serve stopped: {log_path.read_text()[-2000:]}")
                if time.perf_counter() - started > START_TIMEOUT_S:
                    raise BenchError(f"concierge serve did not start in {START_TIMEOUT_S:.0f} s")
                try:
                    if request(url, "GET", "/health", timeout=1.0)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.02)
            yield Server(url, log_path, time.perf_counter() - started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
