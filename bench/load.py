"""Load on the local API with locust: throughput, error rate and latency at 1, 5 and 20
concurrent users with the cache on and off, then the history table checked for every turn
the users were answered."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Summary, ms, reproduce, table
from bench.local_server import OFFLINE_MODELS, BenchError, concierge, environment, request, serving

TITLE = "Load: throughput, errors and latency at 1, 5 and 20 users, cache on and off"
USERS = (1, 5, 20)
CACHE_MODES = ("on", "off")
SECONDS = 15
MAX_REQUESTS = 600
# Seconds locust waits at the end for the requests in flight to come back.
STOP_TIMEOUT_S = 10
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class Request:
    """One line of the locustfile's record."""

    user: str
    session_id: str | None
    request_id: str | None
    status: int
    ok: bool  # answered (200, in the session asked for): what locust counts as a success
    start: float  # epoch seconds
    seconds: float
    cached: bool
    follow_up: bool
    llm_calls: int
    refused: bool  # 200 with the input blocked: never stored, by design

    @classmethod
    def of(cls, line: dict[str, Any]) -> Request:
        guardrail = line.get("guardrail") or {}
        return cls(
            user=str(line["user"]),
            session_id=line.get("session_id"),
            request_id=line.get("request_id"),
            status=int(line["status"]),
            ok=bool(line["ok"]),
            start=float(line["start"]),
            seconds=float(line["seconds"]),
            cached=bool(line.get("cached")),
            follow_up=bool(line.get("follow_up")),
            llm_calls=int(line.get("llm_calls") or 0),
            refused=guardrail.get("action") == "blocked" and guardrail.get("source") == "input",
        )

    @property
    def accepted(self) -> bool:
        return self.ok


@dataclass
class Configuration:
    users: int
    cache: str
    requests: list[Request]
    # locust's own totals (its --json-file): requests and failures it counted
    locust_requests: int
    locust_failures: int
    # POST /chat lines the server's access log gained during the run
    served: int
    # the machine's 1-minute load average when the run ended (2 CPUs: above 2, work waits)
    load_average: float

    @property
    def failures(self) -> int:
        return sum(not r.accepted for r in self.requests)

    @property
    def wall_seconds(self) -> float:
        if not self.requests:
            return 0.0
        first = min(r.start for r in self.requests)
        return max(r.start + r.seconds for r in self.requests) - first

    @property
    def throughput(self) -> float:
        return len(self.requests) / self.wall_seconds if self.wall_seconds else 0.0

    def latency(self) -> Summary:
        return Summary.of([r.seconds for r in self.requests if r.accepted])


@dataclass
class HistoryCheck:
    expected: int = 0  # accepted requests whose turn must be stored
    refused: int = 0  # accepted, refused by the screen: stored by no design
    stored: int = 0  # turns in the history table of the load's users
    lost: list[str] = field(default_factory=list)  # accepted request ids without a turn
    doubled: list[str] = field(default_factory=list)  # request ids stored more than once
    misplaced: list[str] = field(default_factory=list)  # stored under another user or session
    unseen: int = 0  # turns stored for requests the clients never saw answered


@dataclass
class LoadResult:
    seconds: int
    max_requests: int
    configurations: list[Configuration] = field(default_factory=list)
    history: HistoryCheck = field(default_factory=HistoryCheck)
    start_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--load-seconds",
        type=int,
        default=SECONDS,
        help=f"load: locust's --run-time per configuration, seconds (default {SECONDS})",
    )
    parser.add_argument(
        "--load-requests",
        type=int,
        default=MAX_REQUESTS,
        help=f"load: at most this many requests per configuration (default {MAX_REQUESTS})",
    )


def _locust(
    url: str, users: int, cache: str, seconds: int, cap: int, work: Path, seed: int
) -> tuple[list[Request], dict[str, Any]]:
    """One headless locust run: its record and its own stats of POST /chat."""
    name = f"{cache}-{users}"
    record, stats = work / f"{name}.jsonl", work / f"{name}-stats"
    script = Path(sys.executable).with_name("locust")
    argv = [
        str(script),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        url,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--max-requests",
        str(cap),
        "--cache",
        cache,
        "--seed",
        str(seed),
        "--record",
        str(record),
        "--json-file",
        str(stats),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=environment(),
        timeout=seconds + STOP_TIMEOUT_S + 60,
        check=False,
    )
    if not record.is_file() or not stats.with_suffix(".json").is_file():
        raise BenchError(f"locust {name} failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = record.read_text(encoding="utf-8").splitlines()
    entries = json.loads(stats.with_suffix(".json").read_text(encoding="utf-8"))
    chat = next((e for e in entries if e["name"] == "POST /chat"), {})
    return [Request.of(json.loads(line)) for line in lines if line.strip()], chat


def _flush_cache(url: str) -> None:
    """Every configuration starts with an empty cache (auth off, no token: an admin)."""
    status, body, _ = request(url, "POST", "/admin/cache/flush", None, {"all": True})
    if status != 200:
        raise BenchError(f"POST /admin/cache/flush answered {status}: {body}")


def _stored_turns(root: Path, index: Path, store: Path) -> list[dict[str, Any]]:
    """Every item of the history table the server kept in `store`, read through the local
    runtime as `concierge history delete` reads it (the DynamoDB API over the SQLite file)."""
    import boto3

    from concierge.knowledge import IndexFile
    from concierge_cli.local.runtime import REGION, LocalRuntime

    kb_version = IndexFile.model_validate_json(index.read_bytes()).kb_version
    with LocalRuntime(root, index, kb_version, environ=OFFLINE_MODELS, state_path=store) as local:
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = local.table_names["HistoryTable"]
        pages = dynamodb.get_paginator("scan").paginate(TableName=table)
        return [item for page in pages for item in page["Items"]]


def check_history(requests: list[Request], items: list[dict[str, Any]]) -> HistoryCheck:
    """Every accepted request's turn stored once, under its user and session."""
    check = HistoryCheck()
    users = {r.user for r in requests}
    turns = [
        (item["user_id"]["S"], item["session_id"]["S"], item["request_id"]["S"])
        for item in items
        if item["user_id"]["S"] in users
    ]
    check.stored = len(turns)
    by_id = {request_id: (user, session) for user, session, request_id in turns}
    counts = Counter(request_id for _, _, request_id in turns)
    check.doubled = sorted(request_id for request_id, n in counts.items() if n > 1)
    seen = set()
    for r in requests:
        if not r.accepted or r.request_id is None:
            continue
        seen.add(r.request_id)
        if r.refused:
            check.refused += 1
            continue
        check.expected += 1
        if r.request_id not in by_id:
            check.lost.append(r.request_id)
        elif by_id[r.request_id] != (r.user, r.session_id):
            check.misplaced.append(r.request_id)
    check.unseen = sum(1 for request_id in by_id if request_id not in seen)
    return check


def run(args: argparse.Namespace, root: Path, log: TextIO) -> LoadResult:
    result = LoadResult(args.load_seconds, args.load_requests)
    with tempfile.TemporaryDirectory(prefix="concierge-bench-load-") as temporary:
        work = Path(temporary)
        index, store = work / "index.json", work / "tables.sqlite3"
        done = concierge(root, "ingest", "--index", str(index))
        if done.returncode != 0:
            raise BenchError(f"concierge ingest failed: {done.stderr[-2000:]}")
        argv = ["--index", str(index), "--state", str(store)]
        with serving(root, argv, work / "serve.log") as server:
            result.start_seconds = server.start_seconds
            for seed, users in enumerate(USERS):
                for cache in CACHE_MODES:
                    print(f"load: {users} users, cache {cache}", file=log)
                    _flush_cache(server.url)
                    before = server.chat_requests_served()
                    requests, stats = _locust(
                        server.url, users, cache, args.load_seconds, args.load_requests, work, seed
                    )
                    result.configurations.append(
                        Configuration(
                            users,
                            cache,
                            requests,
                            int(stats.get("num_requests", -1)),
                            int(stats.get("num_failures", -1)),
                            server.chat_requests_served() - before,
                            os.getloadavg()[0],
                        )
                    )
        print("load: reading the history table", file=log)
        every = [r for c in result.configurations for r in c.requests]
        result.history = check_history(every, _stored_turns(root, index, store))
    result.errors = _errors(result)
    return result


def _errors(result: LoadResult) -> list[str]:
    errors = []
    for c in result.configurations:
        name = f"load: {c.users} users, cache {c.cache}"
        if not c.requests:
            errors.append(f"{name}: no request was made")
        if c.failures:
            errors.append(f"{name}: {c.failures} of {len(c.requests)} requests failed")
        if (c.locust_requests, c.locust_failures) != (len(c.requests), c.failures):
            errors.append(
                f"{name}: locust counted {c.locust_requests} requests, {c.locust_failures} "
                f"failures; its record {len(c.requests)}, {c.failures}"
            )
        if c.served != len(c.requests):
            errors.append(
                f"{name}: the server logged {c.served} POST /chat, locust {len(c.requests)}"
            )
        if c.cache == "off" and any(r.cached for r in c.requests):
            errors.append(f"{name}: answers came from the cache")
    history = result.history
    for what, ids in (("lost", history.lost), ("doubled", history.doubled)):
        if ids:
            errors.append(f"load: {len(ids)} turns {what}: {', '.join(ids[:5])}")
    if history.misplaced:
        errors.append(f"load: {len(history.misplaced)} turns under another user or session")
    return errors


# -- the report -------------------------------------------------------------------------------
def render(result: LoadResult) -> str:
    rows = []
    for c in result.configurations:
        accepted = [r for r in c.requests if r.accepted]
        latency = c.latency()
        hits = sum(r.cached for r in accepted)
        rows.append(
            [
                str(c.users),
                c.cache,
                str(len(c.requests)),
                f"{c.failures} ({c.failures / len(c.requests):.1%})" if c.requests else "n/a",
                f"{c.throughput:.1f}",
                ms(latency.p50_ms, 0),
                ms(latency.p95_ms, 0),
                ms(latency.max_ms, 0),
                f"{hits / len(accepted):.0%}" if accepted else "n/a",
                f"{sum(r.follow_up for r in accepted)}",
                f"{sum(r.llm_calls for r in accepted) / len(accepted):.2f}" if accepted else "n/a",
                f"{c.load_average:.1f}",
            ]
        )
    one = {c.cache: c for c in result.configurations if c.users == 1}
    most = {c.cache: c for c in result.configurations if c.users == max(USERS)}
    history = result.history
    lines = [
        reproduce(
            TITLE,
            "load",
            ("--load-seconds", result.seconds, SECONDS),
            ("--load-requests", result.max_requests, MAX_REQUESTS),
        ),
        "",
        f"`concierge serve` (auth off, offline models, its own tables) started in "
        f"{result.start_seconds:.1f} s; each configuration ran for {result.seconds} s or "
        f"{result.max_requests} requests, whichever came first, from an empty cache.",
        "",
        table(
            [
                "users",
                "cache",
                "requests",
                "failed",
                "req/s",
                "p50 (ms)",
                "p95 (ms)",
                "max (ms)",
                "cache hits",
                "follow-ups",
                "model calls / request",
                "load avg",
            ],
            rows,
        ),
        "",
    ]
    for cache in CACHE_MODES:
        if cache in one and cache in most and one[cache].throughput:
            growth = most[cache].latency().p50_ms / one[cache].latency().p50_ms
            lines.append(
                f"- cache {cache}: {max(USERS)} users get "
                f"{most[cache].throughput / one[cache].throughput:.2f}x the throughput of one "
                f"and wait {growth:.1f}x as long at p50 (the server answers one request at a time)"
            )
    lines += [
        f"- history: {history.expected} answered requests, {history.stored} turns stored for "
        f"the load's users; lost {len(history.lost)}, stored twice {len(history.doubled)}, "
        f"under another user or session {len(history.misplaced)}; refused by the screen (never "
        f"stored) {history.refused}; stored but never seen answered (cut off at a stop) "
        f"{history.unseen}",
        "- p50/p95 of the answered requests, from the locustfile's own timing of each request; "
        "req/s = requests / (last answer - first request); load avg = the machine's 1-minute "
        f"load average at the end of the run ({os.cpu_count()} logical CPUs)",
    ]
    return "\n".join(lines)
