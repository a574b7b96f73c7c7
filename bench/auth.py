"""What the ownership and budget checks add to a cached request: POST /chat of a cached first
turn through `concierge serve` with auth off and no limits, against the same request through
servers that verify a token (auth local), with and without daily limits."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bench.figures import Summary, goals, median, ms, reproduce, table
from bench.local_server import BenchError, concierge, request, serving

TITLE = "Ownership and budget checks: a cached request with them and without"
REQUESTS = 300
WARM_UP = 20
GOAL_MS = 5.0  # p50 added to a cached request by the checks, against auth off
QUESTION = "What do you sell?"
USER = "bench-user"
# Generous daily limits: every request is admitted, and the checks run in full.
LIMITS = {
    "CONCIERGE_DAILY_TOKEN_LIMIT": "10000000",
    "CONCIERGE_DAILY_USD_LIMIT": "1000",
    "CONCIERGE_REQUEST_TOKEN_RESERVE": "8000",
}
# What a checkout needs to be `--root` of `concierge serve`: the template and what it names.
ROOT_ENTRIES = ("template.yaml", "functions", "statemachine", "layers")

OFF, TOKEN, CHECKS = "off", "token", "checks"
KINDS = (OFF, TOKEN, CHECKS)
LABELS = {
    OFF: "auth off, no limits (no token: the local user)",
    TOKEN: "auth local (verified token), no limits",
    CHECKS: "auth local (verified token) + daily limits",
}


@dataclass(frozen=True)
class Server:
    kind: str
    url: str
    token: str | None


@dataclass(frozen=True)
class AuthResult:
    requests: int
    warm_up: int
    # kind -> seconds of each timed POST /chat
    seconds: dict[str, list[float]]
    # what was checked before timing, in words
    checked: list[str]
    # kind (OFF, TOKEN) -> seconds of the local authorizer alone on one request, in-process
    authorizer_seconds: dict[str, list[float]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth-requests",
        type=int,
        default=REQUESTS,
        help=f"auth: timed cached requests per server (default {REQUESTS})",
    )


# -- the servers ------------------------------------------------------------------------------
def _work_root(root: Path, at: Path) -> Path:
    """A folder `concierge` takes for the repository (links to its template and code), so the
    local key and tables it makes stay out of the checkout's .concierge/."""
    at.mkdir()
    for name in ROOT_ENTRIES:
        (at / name).symlink_to(root / name, target_is_directory=(root / name).is_dir())
    return at


@contextmanager
def _serving(work: Path, index: Path, kind: str, auth: str, extra: dict[str, str]) -> Iterator[str]:
    """`concierge serve` in its own process on its own tables, until it answers /health."""
    argv = ["--index", str(index), "--state", str(work / f"{kind}.sqlite3"), "--auth", auth]
    log_path = work / f"serve-{kind}.log"
    with serving(work / "root", [*argv, "--quiet"], log_path, extra) as server:
        yield server.url


def _token(work: Path) -> str:
    """A token for USER from `concierge token`, signed by the work root's local key."""
    done = concierge(work / "root", "token", "--user", USER, "--ttl", "2h")
    if done.returncode != 0:
        raise BenchError(f"concierge token failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


# -- what each server must do before it is timed ----------------------------------------------
def _check(server: Server) -> list[str]:
    """That the server applies the checks it stands for: (what was verified, in words)."""
    checked = []
    status, usage, _ = request(server.url, "GET", "/me/usage", server.token)
    if status != 200:
        raise BenchError(f"{server.kind}: GET /me/usage answered {status}: {usage}")
    limited = usage["limits"]["tokens"] is not None
    if limited != (server.kind == CHECKS):
        raise BenchError(f"{server.kind}: limits {usage['limits']}")
    if server.kind == OFF:
        if usage["user_id"] != "local":
            raise BenchError(f"auth off: a request without a token is {usage['user_id']}")
    else:
        anonymous = request(server.url, "POST", "/chat", None, {"question": QUESTION})[0]
        if anonymous != 401 or usage["user_id"] != USER:
            raise BenchError(f"{server.kind}: anonymous {anonymous}, user {usage['user_id']}")
        checked.append(f"{LABELS[server.kind]}: a request without a token is 401")
    if limited:
        limits = json.dumps(usage["limits"])
        checked.append(f"{LABELS[server.kind]}: GET /me/usage shows the limits `{limits}`")
    return checked


def _chat(server: Server, session_id: str, cached: bool | None = True) -> float:
    """Seconds of one POST /chat of QUESTION as the first turn of `session_id`; the answer
    must come from the cache (unless `cached` is None)."""
    document = {"question": QUESTION, "session_id": session_id}
    status, body, seconds = request(server.url, "POST", "/chat", server.token, document)
    if status != 200:
        raise BenchError(f"{server.kind}: POST /chat answered {status}: {body}")
    if cached is not None and (body["cached"], body["usage"]["llm_calls"]) != (cached, 0):
        raise BenchError(f"{server.kind}: not a cache hit: {body['cached']}, {body['usage']}")
    return seconds


def _forget(server: Server, session_id: str) -> None:
    """Delete the session the timed request made (its one turn), so the user's history, one
    partition, stays as small for every request. Not timed."""
    status, body, _ = request(server.url, "DELETE", f"/sessions/{session_id}", server.token)
    if status != 200 or body["turns"] != 1 or body["cache_entries"] != 0:
        raise BenchError(f"{server.kind}: DELETE /sessions/{session_id}: {status} {body}")


def _time_authorizer(work: Path, token: str, rounds: int) -> dict[str, list[float]]:
    """Seconds of the local authorizer alone on the timed request's event, in this process:
    auth off without a token (the local user's claims) and auth local verifying the token."""
    from concierge_cli.local.auth import Authorizer, LocalKeys
    from concierge_cli.local.server import http_api_event

    keys = LocalKeys.of(work / "root")
    authorizers = {OFF: Authorizer("off", keys), TOKEN: Authorizer("local", keys)}
    body = json.dumps({"question": QUESTION, "session_id": "timed"}).encode("utf-8")
    events = {
        OFF: http_api_event("POST", "/chat", {"content-type": "application/json"}, body),
        TOKEN: http_api_event(
            "POST",
            "/chat",
            {"content-type": "application/json", "authorization": f"Bearer {token}"},
            body,
        ),
    }
    seconds: dict[str, list[float]] = {OFF: [], TOKEN: []}
    for number in range(rounds + WARM_UP):
        for kind in (OFF, TOKEN) if number % 2 else (TOKEN, OFF):
            started = time.perf_counter()
            authorizers[kind].authorize(events[kind])
            elapsed = time.perf_counter() - started
            if number >= WARM_UP:
                seconds[kind].append(elapsed)
    return seconds


def run(args: argparse.Namespace, root: Path, log: TextIO) -> AuthResult:
    count: int = args.auth_requests
    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index

    with (
        tempfile.TemporaryDirectory(prefix="concierge-bench-auth-") as temporary,
        ExitStack() as up,
    ):
        work = Path(temporary)
        _work_root(root, work / "root")
        index = work / "index.json"
        write_index(build_index([root / "knowledge" / "sample"]), index)
        print("auth: starting three servers", file=log)
        urls = {
            OFF: up.enter_context(_serving(work, index, OFF, "off", {})),
            TOKEN: up.enter_context(_serving(work, index, TOKEN, "local", {})),
            CHECKS: up.enter_context(_serving(work, index, CHECKS, "local", LIMITS)),
        }
        token = _token(work)
        servers = [Server(kind, urls[kind], None if kind == OFF else token) for kind in KINDS]
        checked = [line for server in servers for line in _check(server)]
        for server in servers:
            _chat(server, "warm-miss", cached=None)  # the answer every timed request hits
            for number in range(WARM_UP):
                _chat(server, f"warm-{number}")
        print(f"auth: timing {count} cached requests per server", file=log)
        seconds: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for number in range(count):
            # The order rotates each round, so drift on the machine falls on all three.
            turn = number % len(servers)
            for server in servers[turn:] + servers[:turn]:
                session_id = f"timed-{number}"
                seconds[server.kind].append(_chat(server, session_id))
                _forget(server, session_id)
        authorizer_seconds = _time_authorizer(work, token, count)
    return AuthResult(
        requests=count,
        warm_up=WARM_UP,
        seconds=seconds,
        checked=checked,
        authorizer_seconds=authorizer_seconds,
    )


# -- the report -------------------------------------------------------------------------------
def render(result: AuthResult) -> str:
    summaries = {kind: Summary.of(result.seconds[kind]) for kind in KINDS}
    authorizer = {kind: Summary.of(result.authorizer_seconds[kind]) for kind in (OFF, TOKEN)}
    rows = [
        [
            LABELS[kind],
            str(s.n),
            ms(s.p50_ms, 2),
            ms(s.p95_ms, 2),
            ms(s.mean_ms, 2),
            ms(s.min_ms, 2),
            ms(s.max_ms, 2),
            "—" if kind == OFF else f"{s.p50_ms - summaries[OFF].p50_ms:+.2f}",
        ]
        for kind, s in summaries.items()
    ]
    added = summaries[CHECKS].p50_ms - summaries[OFF].p50_ms
    # The same round's requests to the two servers, one after the other: the machine's drift
    # falls on both alike.
    paired = median(
        [on - off for on, off in zip(result.seconds[CHECKS], result.seconds[OFF], strict=True)]
    )
    token_only = summaries[TOKEN].p50_ms - summaries[OFF].p50_ms
    limits_only = summaries[CHECKS].p50_ms - summaries[TOKEN].p50_ms
    return "\n".join(
        [
            reproduce(TITLE, "auth", ("--auth-requests", result.requests, REQUESTS)),
            "",
            goals(
                (
                    "ownership + budget checks, added to a cached request (p50, vs auth off)",
                    f"≤ {GOAL_MS:g} ms",
                    f"{added:+.2f} ms",
                    added <= GOAL_MS,
                )
            ),
            "",
            f"### POST /chat, a cached first turn, through `concierge serve` ({result.requests} "
            f"interleaved requests per server after {result.warm_up + 1} warm-up ones)",
            "",
            table(
                [
                    "server",
                    "n",
                    "p50 (ms)",
                    "p95 (ms)",
                    "mean (ms)",
                    "min (ms)",
                    "max (ms)",
                    "p50 vs auth off (ms)",
                ],
                rows,
            ),
            "",
            f"- **checks on vs auth off, p50 {added:+.2f} ms**: token verification "
            f"{token_only:+.2f} ms, daily limits {limits_only:+.2f} ms",
            f"- median of the paired differences (checks on minus auth off, same round): "
            f"{paired * 1000:+.2f} ms",
            f"- the local authorizer alone, in-process (p50 of {authorizer[OFF].n}): auth off "
            f"{authorizer[OFF].p50_ms * 1000:.0f} µs, auth local verifying the token "
            f"{authorizer[TOKEN].p50_ms * 1000:.0f} µs",
            *[f"- checked before timing: {line}" for line in result.checked],
        ]
    )
