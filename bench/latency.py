"""Latency of the whole chain in the local runtime with the offline models: a cache miss, a
follow-up and a cache hit of the same questions."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import Summary, ms, ratio, reproduce, table

TITLE = "Local full-chain latency: cache miss, follow-up, cache hit"
QUESTIONS = 25
MISS, FOLLOW_UP, HIT = "miss", "follow-up", "hit"
KINDS = (MISS, FOLLOW_UP, HIT)
LABELS = {
    MISS: "miss (first turn, new question)",
    FOLLOW_UP: "follow-up (2nd turn: one condense-and-classify call)",
    HIT: "hit (same question again, `cached: true`)",
}
OFFLINE_MODELS = {
    f"CONCIERGE_{step}_MODEL": "offline" for step in ("CLASSIFY", "CONDENSE", "ANSWER")
}
# Second turns that lean on the first one, and warm-up questions that are not in qa.jsonl
# (written for this benchmark).
FOLLOW_UPS = {
    "en": [
        "And how much does it cost?",
        "Can you tell me more about that?",
        "Is that also true for them?",
    ],
    "es": ["¿Y eso cuánto cuesta?", "¿Puedes explicarme eso mejor?"],
    "de": ["Gibt es davon auch eine günstigere Variante?", "Und wie lange gilt dieses Angebot?"],
}
WARM_UP = (
    ("Do you ship to Switzerland?", "en"),
    ("How do I reset my password?", "en"),
    ("¿Tenéis sacos de dormir?", "es"),
    ("Wie kann ich eine Bestellung zurückschicken?", "de"),
)


class BenchError(RuntimeError):
    """A response broke what the benchmark relies on (an error, a repeat that missed the cache)."""


@dataclass(frozen=True)
class Reply:
    seconds: float
    body: dict[str, Any]
    request_id: str


@dataclass
class Chat:
    """One `LocalRuntime` over the sample index: timed requests and the emulator's own record
    of each execution (read after the timing)."""

    runtime: Any
    index_chunks: int
    index_seconds: float
    startup_seconds: float = 0.0
    stepfunctions: Any = None

    def ask(
        self, question: str, session_id: str | None = None, bypass_cache: bool = False
    ) -> Reply:
        body: dict[str, Any] = {"question": question, "session_id": session_id}
        if bypass_cache:
            body["bypass_cache"] = True
        from concierge_cli.local.auth import as_local_user
        from concierge_cli.local.server import http_api_event

        request_id = uuid.uuid4().hex
        data = json.dumps({k: v for k, v in body.items() if v}, ensure_ascii=False)
        event = http_api_event(
            "POST", "/chat", {"content-type": "application/json"}, data.encode("utf-8")
        )
        event["requestContext"]["requestId"] = request_id
        started = time.perf_counter()
        response = self.runtime.api(as_local_user(event))
        seconds = time.perf_counter() - started
        answer: dict[str, Any] = json.loads(response["body"])
        if response["statusCode"] != 200:
            raise BenchError(f"{question!r}: HTTP {response['statusCode']} {answer}")
        if session_id is not None and answer.get("session_id") != session_id:
            raise BenchError(f"{question!r}: answered in session {answer.get('session_id')}")
        return Reply(seconds, answer, request_id)

    def execution(self, request_id: str) -> dict[str, Any] | None:
        """DescribeExecution of the request's execution (named after its request id)."""
        from botocore.exceptions import ClientError

        prefix = self.runtime.state_machine_arn.replace(":stateMachine:", ":execution:")
        try:
            description: dict[str, Any] = self.stepfunctions.describe_execution(
                executionArn=f"{prefix}:{request_id}"
            )
        except ClientError:  # a missing figure, not a failed benchmark
            return None
        return description if "stopDate" in description else None


@contextmanager
def sample_runtime(root: Path, environ: dict[str, str]) -> Iterator[Chat]:
    """The sample knowledge base indexed into a temporary folder, and one runtime serving it."""
    import boto3

    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index
    from concierge_cli.local.runtime import REGION, LocalRuntime

    # moto logs an ERROR for every expected evaluation failure (IsPresent on a cache miss).
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="concierge-bench-") as work:
        started = time.perf_counter()
        index = build_index([root / "knowledge" / "sample"])
        index_path = Path(work) / "index.json"
        write_index(index, index_path)
        chat = Chat(None, len(index.chunks), time.perf_counter() - started)
        started = time.perf_counter()
        with LocalRuntime(root, index_path, index.kb_version, environ=environ) as runtime:
            chat.runtime, chat.startup_seconds = runtime, time.perf_counter() - started
            chat.stepfunctions = boto3.client("stepfunctions", region_name=REGION)
            yield chat


@dataclass
class LatencyResult:
    samples: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    # The emulator's own startDate -> stopDate of each execution (1 ms resolution).
    executions: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    model_calls: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    questions: int = 0
    wanted: int = QUESTIONS
    candidates: int = 0
    ungrounded: list[str] = field(default_factory=list)  # not cached by design: cannot hit
    warm_up_requests: int = 0
    index_chunks: int = 0
    index_seconds: float = 0.0
    startup_seconds: float = 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--questions",
        type=int,
        default=QUESTIONS,
        help=f"latency: distinct questions timed (default {QUESTIONS})",
    )


def _ask(chat: Chat, kind: str, question: str, session_id: str | None = None) -> Reply:
    reply = chat.ask(question, session_id)
    if reply.body.get("cached") is not (kind == HIT):
        raise BenchError(f"{kind} {question!r}: cached={reply.body.get('cached')!r}")
    if kind == HIT and reply.body["usage"]["llm_calls"]:
        raise BenchError(f"hit {question!r} called a model: {reply.body['usage']}")
    return reply


def _follow_up(language: str, number: int) -> str:
    choices = FOLLOW_UPS.get(language, FOLLOW_UPS["en"])
    return choices[number % len(choices)]


def _measure(chat: Chat, questions: list[tuple[str, str]], result: LatencyResult) -> None:
    """Miss, hit and follow-up of successive questions, pipelined, their order rotated."""
    candidates = deque(questions)
    hits: deque[tuple[int, str, str, str]] = deque()
    follow_ups: deque[tuple[int, str, str, str]] = deque()
    step = 0
    while jobs := (
        [MISS] * bool(result.questions < result.wanted and candidates)
        + [HIT] * bool(hits)
        + [FOLLOW_UP] * bool(follow_ups)
    ):
        turn, step = step % len(jobs), step + 1
        for kind in jobs[turn:] + jobs[:turn]:
            if kind == MISS:
                text, language = candidates.popleft()
                reply = _ask(chat, MISS, text)
                if not reply.body["citations"]:
                    result.ungrounded.append(text)
                    continue
                hits.append((result.questions, text, language, reply.body["session_id"]))
                result.questions += 1
            elif kind == HIT:
                number, text, language, session_id = hits.popleft()
                reply = _ask(chat, HIT, text)
                follow_ups.append((number, text, language, session_id))
            else:
                number, text, language, session_id = follow_ups.popleft()
                reply = _ask(chat, FOLLOW_UP, _follow_up(language, number), session_id)
            result.samples[kind].append(reply.seconds)
            result.model_calls[kind].append(int(reply.body["usage"]["llm_calls"]))
            if description := chat.execution(reply.request_id):
                elapsed = description["stopDate"] - description["startDate"]
                result.executions[kind].append(elapsed.total_seconds())


def run(args: argparse.Namespace, root: Path, log: TextIO) -> LatencyResult:
    result = LatencyResult(wanted=args.questions)
    questions: dict[str, str] = {}
    for line in (root / "knowledge" / "sample" / "qa.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            questions.setdefault(record["question"], record.get("language", "en"))
    result.candidates = len(questions)
    with sample_runtime(root, OFFLINE_MODELS) as chat:
        result.index_chunks, result.index_seconds = chat.index_chunks, chat.index_seconds
        result.startup_seconds = chat.startup_seconds
        for number, (text, language) in enumerate(WARM_UP):
            first = _ask(chat, MISS, text)
            if first.body["citations"]:
                _ask(chat, HIT, text)
                result.warm_up_requests += 1
            _ask(chat, FOLLOW_UP, _follow_up(language, number), first.body["session_id"])
            result.warm_up_requests += 2
        print(f"  latency: warmed up with {result.warm_up_requests} requests", file=log)
        _measure(chat, list(questions.items()), result)
    print(f"  latency: measured {result.questions} of {result.wanted} questions", file=log)
    return result


def _rows(result: LatencyResult, samples: dict[str, list[float]]) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        s = Summary.of(samples[kind])
        calls = result.model_calls[kind]
        cells = [s.p50_ms, s.p95_ms, s.mean_ms, s.min_ms, s.max_ms]
        mean_calls = ratio(sum(calls), len(calls))
        rows.append([LABELS[kind], str(s.n), *map(ms, cells), f"{mean_calls:.1f}"])
    return rows


def render(result: LatencyResult) -> str:
    headers = ["request", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "min (ms)", "max (ms)"]
    headers.append("model calls")
    p50 = {kind: Summary.of(result.samples[kind]).p50_ms for kind in KINDS}
    inside = {kind: Summary.of(result.executions[kind]).p50_ms for kind in KINDS}
    hit_ratio = ratio(p50[HIT], p50[MISS])
    set_aside = "; ".join(f"“{text}”" for text in result.ungrounded) or "none"
    return "\n".join(
        [
            reproduce(TITLE, "latency", ("--questions", result.wanted, QUESTIONS)),
            "",
            f"Sample index: {result.index_chunks} chunks, built in "
            f"{result.index_seconds * 1000:.0f} ms; runtime start {result.startup_seconds:.2f} s; "
            f"{result.warm_up_requests} warm-up requests; {result.questions} of "
            f"{result.candidates} questions measured. Set aside (ungrounded, so never cached): "
            f"{set_aside}.",
            "",
            "### End to end (`runtime.api(event)`, what a client of the local API sees)",
            "",
            table(headers, _rows(result, result.samples)),
            "",
            f"- **hit / miss p50 = {hit_ratio:.2f}** ({ratio(1, hit_ratio):.2f}x faster)",
            f"- follow-up / miss p50 = {ratio(p50[FOLLOW_UP], p50[MISS]):.2f}",
            "",
            "### Inside the emulator (the execution's own startDate to stopDate)",
            "",
            table(headers, _rows(result, result.executions)),
            "",
            f"- **hit / miss p50 = {ratio(inside[HIT], inside[MISS]):.2f}** inside the emulator",
            f"- follow-up / miss p50 = {ratio(inside[FOLLOW_UP], inside[MISS]):.2f}",
            "- polling and API overhead at p50: "
            + ", ".join(f"{kind} {ms(p50[kind] - inside[kind])} ms" for kind in KINDS),
        ]
    )
