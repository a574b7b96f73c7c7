"""Under load: a short locust run of bench/locustfile.py against the local API, two users asking
the sample's questions in sessions at the same time. No request fails, and every answered
request's turn is in the history once, under its user and session.

Bounded: two users, three seconds, forty requests at most, loopback only; locust stops by
itself. The figures of larger runs are in BENCHMARKS.md ("Load"), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from e2e.http_support import ChatApi, history_items

from concierge_cli.local.runtime import LocalRuntime

USERS = 2
RUN_TIME = "3s"
MAX_REQUESTS = 40
LOCUST_TIMEOUT_S = 25


def test_two_users_under_load_get_every_answer_and_lose_no_turn(
    api: ChatApi, service_runtime: LocalRuntime, repo_root: Path, tmp_path: Path
) -> None:
    # Given the local API with nothing stored, and a bounded locust run of two users
    record = tmp_path / "requests.jsonl"
    argv = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(repo_root / "bench" / "locustfile.py"),
        "--headless",
        "--host",
        f"http://{api.host}:{api.port}",
        "--users",
        str(USERS),
        "--spawn-rate",
        str(USERS),
        "--run-time",
        RUN_TIME,
        "--stop-timeout",
        "10",
        "--max-requests",
        str(MAX_REQUESTS),
        "--record",
        str(record),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]

    # When locust runs until its time or its request cap is up
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=LOCUST_TIMEOUT_S, check=False
    )

    # Then it stopped by itself with no failure, and every request it sent was answered
    assert done.returncode == 0, done.stderr[-3000:]
    requests = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert 0 < len(requests) <= MAX_REQUESTS
    assert all(r["status"] == 200 and r["ok"] for r in requests)
    assert len({r["user"] for r in requests}) == USERS
    # And every answered request's turn is stored exactly once, under its user and session
    stored = Counter(
        (item["user_id"]["S"], item["session_id"]["S"], item["request_id"]["S"])
        for item in history_items(service_runtime)
    )
    answered = Counter((r["user"], r["session_id"], r["request_id"]) for r in requests)
    assert stored == answered
