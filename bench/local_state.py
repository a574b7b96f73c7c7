"""The local run's stored history and cache at scale: `concierge ask` as a whole process, with
and without a running `concierge serve`, and POST /chat through a real local server, each on
an empty store and on one holding thousands of turns."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Summary, goals, median, ms, ratio, reproduce, table, x
from bench.local_server import (
    OFFLINE_MODELS,
    BenchError,
    Server,
    concierge,
    request,
    serving,
)

TITLE = "Local state: `concierge ask` and the local server with thousands of stored turns"
ASK_TURNS = 2_000
SERVER_TURNS = 5_000
ASK_RUNS = 5
REQUESTS = 48
# The goals: seconds of a whole `concierge ask` with ASK_TURNS stored, with the server
# up and without; p50 of POST /chat with SERVER_TURNS stored over the empty store's.
GOAL_ASK_SERVED_S, GOAL_ASK_IN_PROCESS_S, GOAL_P50_RATIO = 1.5, 3.0, 1.2
TURNS_PER_SESSION = 5
FOLLOW_UP = "And how much does it cost?"
IN_PROCESS, SERVED = "in-process", "through `concierge serve`"


@dataclass(frozen=True)
class Seed:
    """What a seeded store holds, and how large its items are."""

    turns: int
    sessions: int
    cache_entries: int
    turn_bytes: float
    entry_bytes: float


@dataclass(frozen=True)
class LocalStateResult:
    ask_runs: int
    requests: int
    ask_seed: Seed
    server_seed: Seed
    # (mode, stored turns) -> wall seconds of each timed `concierge ask` process
    ask_seconds: dict[tuple[str, int], list[float]]
    # stored turns -> seconds of each timed POST /chat
    chat_seconds: dict[int, list[float]]
    # stored turns -> seconds from starting `concierge serve` to its first answer on /health
    serve_start_seconds: dict[int, float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--local-state-turns",
        type=int,
        default=ASK_TURNS,
        help=f"turns stored for the `concierge ask` runs (default {ASK_TURNS})",
    )
    parser.add_argument(
        "--local-state-server-turns",
        type=int,
        default=SERVER_TURNS,
        help=f"turns stored for the POST /chat requests (default {SERVER_TURNS})",
    )
    parser.add_argument(
        "--local-state-runs",
        type=int,
        default=ASK_RUNS,
        help=f"timed `concierge ask` processes per case (default {ASK_RUNS})",
    )
    parser.add_argument(
        "--local-state-requests",
        type=int,
        default=REQUESTS,
        help=f"timed POST /chat requests per store (default {REQUESTS})",
    )


# -- the command line and a server, as a user runs them ----------------------------------------
@contextmanager
def _serving(root: Path, index: Path, store: Path) -> Iterator[Server]:
    """`concierge serve` on this store, in its own process, until it answers /health."""
    argv = ["--index", str(index), "--state", str(store)]
    with serving(root, argv, store.with_name("serve.log")) as server:
        yield server


def _post_chat(url: str, question: str, session_id: str) -> float:
    """Seconds of one POST /chat, from sending to the whole reply read."""
    document = {"question": question, "session_id": session_id}
    status, body, seconds = request(url, "POST", "/chat", document=document)
    if status != 200:
        raise BenchError(f"POST /chat answered {status}: {str(body)[:300]}")
    return seconds


# -- the stores -----------------------------------------------------------------------------
def _questions(root: Path) -> list[str]:
    lines = (root / "knowledge" / "sample" / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [row["question"] for row in rows if row["language"] == "en"]


def _seed(root: Path, index: Path, store: Path, turns: int, questions: list[str]) -> Seed:
    """`turns` turns in sessions of TURNS_PER_SESSION, and a cache entry per session, written
    in one store transaction: copies of turns and entries the chain produced for real, so their
    sizes are real ones."""
    import boto3

    from concierge.knowledge import IndexFile
    from concierge_cli.local.auth import as_local_user
    from concierge_cli.local.runtime import REGION, LocalRuntime
    from concierge_cli.local.server import http_api_event

    kb_version = IndexFile.model_validate_json(index.read_bytes()).kb_version
    with LocalRuntime(root, index, kb_version, environ=OFFLINE_MODELS, state_path=store) as local:
        for question in [questions[0], FOLLOW_UP, *questions[1 : TURNS_PER_SESSION - 1]]:
            body = json.dumps({"question": question, "session_id": "model"}).encode("utf-8")
            event = http_api_event("POST", "/chat", {"content-type": "application/json"}, body)
            if local.api(as_local_user(event))["statusCode"] != 200:
                raise BenchError(f"the chain failed on {question!r} while seeding")
        dynamodb: Any = boto3.client("dynamodb", region_name=REGION)
        history, cache = local.table_names["HistoryTable"], local.table_names["CacheTable"]
        model_turns = dynamodb.scan(TableName=history)["Items"]
        model_entries = dynamodb.scan(TableName=cache)["Items"]
        if not model_turns or not model_entries:
            raise BenchError("seeding found no turn or no cache entry to copy")
        sessions = -(-turns // TURNS_PER_SESSION)
        writes: list[tuple[str, dict[str, Any]]] = [
            (history, {"Key": {k: t[k] for k in ("user_id", "turn_key")}}) for t in model_turns
        ]
        writes += [(cache, {"Key": {"cache_key": e["cache_key"]}}) for e in model_entries]
        writes = [(table, {"DeleteRequest": request}) for table, request in writes]
        for number in range(turns):
            turn = dict(model_turns[number % len(model_turns)])
            session = f"seed-{number // TURNS_PER_SESSION}"
            # One user a session: the users of a busy local run, each with a few turns.
            turn["user_id"] = {"S": f"user-{number // TURNS_PER_SESSION}"}
            turn["session_id"] = {"S": session}
            turn["turn_key"] = {"S": f"{session}#{1_700_000_000_000 + number:013d}#seed{number}"}
            writes.append((history, {"PutRequest": {"Item": turn}}))
        for session in range(sessions):
            entry = dict(model_entries[session % len(model_entries)])
            entry["cache_key"] = {"S": f"q#seed-{session}"}
            entry["user_id"] = {"S": f"user-{session}"}
            entry["session_id"] = {"S": f"seed-{session}"}
            writes.append((cache, {"PutRequest": {"Item": entry}}))
        assert local.store is not None
        with local.store.transaction():  # one commit, not one per item
            for start in range(0, len(writes), 25):
                batch: dict[str, list[dict[str, Any]]] = {}
                for table, request in writes[start : start + 25]:
                    batch.setdefault(table, []).append(request)
                dynamodb.batch_write_item(RequestItems=batch)
        stored = {
            table: sum(
                page["Count"]
                for page in dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT")
            )
            for table in (history, cache)
        }
        if stored != {history: turns, cache: sessions}:
            raise BenchError(f"seeded {stored}, not {turns} turns and {sessions} entries")
    return Seed(
        turns=turns,
        sessions=sessions,
        cache_entries=sessions,
        turn_bytes=median([len(json.dumps(turn)) for turn in model_turns]),
        entry_bytes=median([len(json.dumps(entry)) for entry in model_entries]),
    )


def _copy(store: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    if store.is_file():
        shutil.copyfile(store, to / store.name)
    return to / store.name


# -- measuring ------------------------------------------------------------------------------
def _time_asks(
    root: Path, index: Path, store: Path, questions: list[str], log: TextIO
) -> list[float]:
    """Wall seconds of each `concierge ask` process after the first (a warm-up), each a new
    question in a new session."""
    seconds = []
    for number, question in enumerate(questions):
        started = time.perf_counter()
        done = concierge(
            root,
            "ask",
            question,
            "--session",
            f"ask-{number}",
            "--index",
            str(index),
            "--state",
            str(store),
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(f"concierge ask failed ({done.returncode}): {done.stderr[-2000:]}")
        if number:
            seconds.append(elapsed)
        print(f"  ask {number}: {elapsed:.2f} s", file=log)
    return seconds


def _chat_requests(questions: list[str], count: int) -> list[tuple[str, str]]:
    """(question, session): first turns and their follow-ups; questions come round again in
    new sessions, so later first turns are cache hits."""
    requests = []
    for number in range(count):
        pair = number // 2
        question = questions[pair % len(questions)] if number % 2 == 0 else FOLLOW_UP
        requests.append((question, f"chat-{pair}"))
    return requests


def run(args: argparse.Namespace, root: Path, log: TextIO) -> LocalStateResult:
    runs: int = args.local_state_runs
    ask_turns: int = args.local_state_turns
    server_turns: int = args.local_state_server_turns
    count: int = args.local_state_requests
    questions = _questions(root)
    ask_questions = questions[: runs + 1]
    if len(ask_questions) < runs + 1:
        raise BenchError(f"qa.jsonl has {len(questions)} English questions, fewer than {runs + 1}")
    requests = _chat_requests(questions, count)
    warm_up = [(question, f"warm-{number}") for number, question in enumerate(questions[:3])]

    with tempfile.TemporaryDirectory(prefix="concierge-bench-state-") as temporary:
        work = Path(temporary)
        index = work / "index.json"
        print("local_state: indexing the sample knowledge base", file=log)
        done = concierge(root, "ingest", "--index", str(index))
        if done.returncode != 0:
            raise BenchError(f"concierge ingest failed: {done.stderr[-2000:]}")

        print(f"local_state: seeding {ask_turns} and {server_turns} turns", file=log)
        empty = work / "empty" / "tables.sqlite3"
        ask_seed = _seed(root, index, work / "ask-seeded" / "tables.sqlite3", ask_turns, questions)
        server_seed = _seed(
            root, index, work / "chat-seeded" / "tables.sqlite3", server_turns, questions
        )

        ask_seconds: dict[tuple[str, int], list[float]] = {}
        for turns, source in ((0, empty), (ask_turns, work / "ask-seeded" / "tables.sqlite3")):
            print(f"local_state: concierge ask in-process, {turns} turns stored", file=log)
            alone = _copy(source, work / f"ask-alone-{turns}")
            ask_seconds[IN_PROCESS, turns] = _time_asks(root, index, alone, ask_questions, log)

            print(f"local_state: concierge ask through a server, {turns} turns stored", file=log)
            served = _copy(source, work / f"ask-served-{turns}")
            with _serving(root, index, served) as server:
                ask_seconds[SERVED, turns] = _time_asks(root, index, served, ask_questions, log)
                if server.chat_requests_served() != len(ask_questions):
                    raise BenchError("`concierge ask` did not go through the running server")

        chat_seconds: dict[int, list[float]] = {0: [], server_turns: []}
        serve_start: dict[int, float] = {}
        print(f"local_state: POST /chat, empty store and {server_turns} turns", file=log)
        with (
            _serving(root, index, _copy(empty, work / "chat-empty")) as on_empty,
            _serving(root, index, work / "chat-seeded" / "tables.sqlite3") as on_seeded,
        ):
            serve_start = {0: on_empty.start_seconds, server_turns: on_seeded.start_seconds}
            servers = {0: on_empty, server_turns: on_seeded}
            for question, session in warm_up:
                for server in servers.values():
                    _post_chat(server.url, question, session)
            for number, (question, session) in enumerate(requests):
                # Alternate which store goes first, so drift on the machine falls on both.
                order = [0, server_turns] if number % 2 == 0 else [server_turns, 0]
                for turns in order:
                    chat_seconds[turns].append(_post_chat(servers[turns].url, question, session))
    return LocalStateResult(
        ask_runs=runs,
        requests=count,
        ask_seed=ask_seed,
        server_seed=server_seed,
        ask_seconds=ask_seconds,
        chat_seconds=chat_seconds,
        serve_start_seconds=serve_start,
    )


# -- the report -----------------------------------------------------------------------------
def _stored(seed: Seed) -> str:
    return (
        f"{seed.turns:,} turns in {seed.sessions:,} sessions (median item {seed.turn_bytes:,.0f} B) "
        f"and {seed.cache_entries:,} cache entries (median item {seed.entry_bytes:,.0f} B)"
    )


def render(result: LocalStateResult) -> str:
    ask_turns, server_turns = result.ask_seed.turns, result.server_seed.turns
    ask_rows = [
        [mode]
        + [f"{median(result.ask_seconds[mode, turns]):.2f}" for turns in (0, ask_turns)]
        + [f"{min(result.ask_seconds[mode, ask_turns]):.2f}"]
        + [f"{max(result.ask_seconds[mode, ask_turns]):.2f}"]
        for mode in (IN_PROCESS, SERVED)
    ]
    summaries = {turns: Summary.of(result.chat_seconds[turns]) for turns in (0, server_turns)}
    chat_rows = [
        [
            "empty" if turns == 0 else f"{turns:,} turns",
            str(summary.n),
            ms(summary.p50_ms),
            ms(summary.p95_ms),
            ms(summary.mean_ms),
            f"{result.serve_start_seconds[turns]:.2f}",
        ]
        for turns, summary in summaries.items()
    ]
    p50_ratio = ratio(summaries[server_turns].p50_ms, summaries[0].p50_ms)
    served = median(result.ask_seconds[SERVED, ask_turns])
    in_process = median(result.ask_seconds[IN_PROCESS, ask_turns])
    return "\n".join(
        [
            reproduce(
                TITLE,
                "local_state",
                ("--local-state-turns", ask_turns, ASK_TURNS),
                ("--local-state-server-turns", server_turns, SERVER_TURNS),
                ("--local-state-runs", result.ask_runs, ASK_RUNS),
                ("--local-state-requests", result.requests, REQUESTS),
            ),
            "",
            goals(
                (
                    f"`concierge ask` with {ask_turns:,} turns, `make run` up",
                    f"≤ {GOAL_ASK_SERVED_S:g} s",
                    f"{served:.2f} s",
                    served <= GOAL_ASK_SERVED_S,
                ),
                (
                    f"`concierge ask` with {ask_turns:,} turns, no server",
                    f"≤ {GOAL_ASK_IN_PROCESS_S:g} s",
                    f"{in_process:.2f} s",
                    in_process <= GOAL_ASK_IN_PROCESS_S,
                ),
                (
                    f"POST /chat p50 with {server_turns:,} turns vs an empty store",
                    f"≤ {GOAL_P50_RATIO:g}x",
                    x(p50_ratio),
                    p50_ratio <= GOAL_P50_RATIO,
                ),
            ),
            "",
            f"### `concierge ask`, the whole process (median of {result.ask_runs} runs, s)",
            "",
            f"Stored: {_stored(result.ask_seed)}.",
            "",
            table(
                [
                    "`concierge ask`",
                    "empty store",
                    f"{ask_turns:,} turns",
                    f"min, {ask_turns:,}",
                    f"max, {ask_turns:,}",
                ],
                ask_rows,
            ),
            "",
            "### POST /chat through `concierge serve`",
            "",
            f"Stored: {_stored(result.server_seed)}.",
            "",
            table(
                ["store", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "serve start (s)"],
                chat_rows,
            ),
            "",
            f"- **p50 {server_turns:,} turns / empty = {x(p50_ratio)}**",
        ]
    )
