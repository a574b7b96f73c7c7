"""Load on the chat API with locust: simulated users asking the sample's questions, in sessions.

Each locust user is one user of the API (its own `sub`, so its own history partition) who
works through the sample's conversations (`bench/conversations.jsonl`, follow-ups in the same
session) and the single questions of `knowledge/sample/qa.jsonl`, in an order of its own, with
no pause between requests: N users keep N requests in flight. Bounded three ways and stopping by
itself: the users (`-u`), the time (`--run-time`) and the requests (`--max-requests`, counted
across all users; the run quits when it is reached).

It speaks to a local server with auth off (`make run`, `concierge serve`): each user sends an
unverified token naming its `sub`, in the admin group when the cache is off, because only
administrators may bypass the cache (`--cache off` puts `"bypass_cache": true` in every body).
With `--record FILE` every request is one JSON line there: who asked, in which session, the
status, the request id, whether it was served from the cache, and when and how long it took,
so that the caller can compute exact percentiles and check the history table afterwards.

    .venv/bin/locust -f bench/locustfile.py --headless -H http://127.0.0.1:3000 \
        -u 5 -r 5 --run-time 30s --max-requests 300 --cache on --record load.jsonl

Loopback only: a host that is not on this machine is refused before any request is sent.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import random
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.exception import StopUser

BENCH = Path(__file__).resolve().parent
CONVERSATIONS = BENCH / "conversations.jsonl"
QUESTIONS = BENCH.parent / "knowledge" / "sample" / "qa.jsonl"
DEFAULT_MAX_REQUESTS = 1_000


def _records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def sessions() -> list[list[str]]:
    """What users ask: each scripted conversation (its turns, follow-ups included) and each
    question of qa.jsonl on its own."""
    conversations = [[str(turn) for turn in record["turns"]] for record in _records(CONVERSATIONS)]
    return conversations + [[str(record["question"])] for record in _records(QUESTIONS)]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Run:
    """What the users of one locust process share: the options, the request count against
    the cap, and the record file."""

    def __init__(self, environment: Environment) -> None:
        options = environment.parsed_options
        self.bypass_cache = options is not None and options.cache == "off"
        self.max_requests = options.max_requests if options is not None else DEFAULT_MAX_REQUESTS
        self.seed = options.seed if options is not None else 0
        self.tag = secrets.token_hex(3)  # users of this run: load-<tag>-<n>
        self.sessions = sessions()
        self.sent = 0
        self._numbers = itertools.count(1)
        self._token_key = secrets.token_bytes(32)  # auth off reads tokens unverified
        path = options.record if options is not None else ""
        self._record = Path(path) if path else None
        if self._record is not None:
            self._record.write_text("", encoding="utf-8")

    def next_user(self) -> int:
        return next(self._numbers)

    def admit(self) -> bool:
        """Whether one more request may be sent (and counts it)."""
        if self.sent >= self.max_requests:
            return False
        self.sent += 1
        return True

    def token(self, user_id: str) -> str:
        import jwt  # here: it imports ssl, which locust's gevent patching must come before

        claims: dict[str, Any] = {"sub": user_id, "token_use": "id"}
        if self.bypass_cache:
            claims["cognito:groups"] = ["admin"]
        return jwt.encode(claims, self._token_key, algorithm="HS256")

    def record(self, line: dict[str, Any]) -> None:
        if self._record is not None:
            with self._record.open("a", encoding="utf-8") as record:
                record.write(json.dumps(line) + "\n")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--cache",
        choices=["on", "off"],
        default="on",
        help="off: every request carries bypass_cache (the users are administrators)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help=f"quit after this many requests, all users together (default {DEFAULT_MAX_REQUESTS})",
    )
    parser.add_argument("--record", default="", help="write one JSON line per request here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the users' question orders")


@events.init.add_listener
def _start(environment: Environment, **_: Any) -> None:
    if environment.host is None or not is_loopback(environment.host):
        raise SystemExit(f"refusing to load {environment.host!r}: only loopback hosts are allowed")
    ChatUser.shared = Run(environment)


class ChatUser(FastHttpUser):
    """One API user asking question after question, one session after another."""

    wait_time = constant(0)
    shared: Run  # set when locust starts (`_start`)

    def on_start(self) -> None:
        run = self.shared
        self.number = run.next_user()
        self.user_id = f"load-{run.tag}-{self.number}"
        self.headers = {"authorization": f"Bearer {run.token(self.user_id)}"}
        order = list(run.sessions)
        random.Random(run.seed * 1_000 + self.number).shuffle(order)
        self.sessions = itertools.cycle(order)
        self.turns: list[str] = []
        self.session_id: str | None = None

    @task
    def ask(self) -> None:
        run = self.shared
        if not self.turns:
            self.turns, self.session_id = list(next(self.sessions)), None
        if not run.admit():
            # Quit from a greenlet of its own: quitting stops this user, and a greenlet that
            # quits from inside a user is killed before it has stopped the runner.
            if self.environment.runner is not None:
                gevent.spawn(self.environment.runner.quit)
            raise StopUser
        question = self.turns.pop(0)
        body: dict[str, Any] = {"question": question}
        if self.session_id is not None:
            body["session_id"] = self.session_id
        if run.bypass_cache:
            body["bypass_cache"] = True
        line: dict[str, Any] = {
            "user": self.user_id,
            "session_id": self.session_id,
            "follow_up": self.session_id is not None,
            "start": time.time(),
            "ok": False,
        }
        started = time.perf_counter()
        with self.client.post(
            "/chat", json=body, headers=self.headers, name="POST /chat", catch_response=True
        ) as response:
            line["seconds"] = time.perf_counter() - started
            line["status"] = response.status_code
            reply = _json(response.text)
            line["request_id"] = reply.get("request_id") or response.headers.get("x-request-id")
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif self.session_id is not None and reply.get("session_id") != self.session_id:
                response.failure("answered in another session")
            else:
                response.success()
                line["ok"] = True
                self.session_id = reply.get("session_id")
                line["session_id"] = self.session_id
                line["cached"] = bool(reply.get("cached"))
                line["llm_calls"] = (reply.get("usage") or {}).get("llm_calls")
                line["guardrail"] = reply.get("guardrail")
        if not line["ok"]:
            self.turns, self.session_id = [], None  # a failed turn ends its session
        run.record(line)


def _json(text: str | None) -> dict[str, Any]:
    try:
        document = json.loads(text or "")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
