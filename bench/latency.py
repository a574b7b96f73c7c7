"""Full-chain latency through the local runtime with the offline models.

One `LocalRuntime` (moto's Step Functions emulator running statemachine/chat.asl.json, the
real handlers in-process, DynamoDB in memory) serves three kinds of request:

* miss       a first-turn question nobody asked before: classify, retrieve, answer, store;
* hit        the same question again in a new session: answered from the cache table;
* follow-up  a second turn in the miss's session: history, so condense (which classifies too).

The kinds are pipelined (miss of one question, hit of the previous one, follow-up of the one
before) and their order is rotated every step, so drift and noise on the machine fall on all
three alike. Only grounded answers are cached (by design), so a question whose miss comes
back without citations is set aside and the next candidate takes its place.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from bench.stats import Summary

MISS, FOLLOW_UP, HIT = "miss", "follow-up", "hit"
REGION = "us-east-1"
KINDS = (MISS, FOLLOW_UP, HIT)
OFFLINE_MODELS = {
    "CONCIERGE_CLASSIFY_MODEL": "offline",
    "CONCIERGE_CONDENSE_MODEL": "offline",
    "CONCIERGE_ANSWER_MODEL": "offline",
}


@dataclass(frozen=True)
class Question:
    text: str
    language: str


# Second turns that lean on the first one, per language (written for this benchmark).
FOLLOW_UPS = {
    "en": [
        "And how much does it cost?",
        "Can you tell me more about that?",
        "Is that also true for them?",
    ],
    "es": ["¿Y eso cuánto cuesta?", "¿Puedes explicarme eso mejor?"],
    "de": ["Gibt es davon auch eine günstigere Variante?", "Und wie lange gilt dieses Angebot?"],
}
# Warm-up questions (written for this benchmark, not in qa.jsonl), so every qa.jsonl question
# stays a candidate for measurement.
WARM_UP = [
    Question("Do you ship to Switzerland?", "en"),
    Question("How do I reset my password?", "en"),
    Question("¿Tenéis sacos de dormir?", "es"),
    Question("Wie kann ich eine Bestellung zurückschicken?", "de"),
]


@dataclass
class LatencyResult:
    samples: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    model_calls: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    # The emulator's own startDate -> stopDate of each execution (1 ms resolution): the chain
    # without the API's DescribeExecution polling.
    executions: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    questions: int = 0
    candidates: int = 0
    # Questions whose miss had no citations: not cacheable, so not measured.
    ungrounded: list[str] = field(default_factory=list)
    warm_up_requests: int = 0
    index_chunks: int = 0
    index_seconds: float = 0.0
    startup_seconds: float = 0.0
    wall_seconds: float = 0.0

    def summary(self, kind: str) -> Summary:
        return Summary.of(self.samples[kind])

    def execution_summary(self, kind: str) -> Summary:
        return Summary.of(self.executions[kind])

    def mean_model_calls(self, kind: str) -> float:
        calls = self.model_calls[kind]
        return sum(calls) / len(calls) if calls else 0.0


class BenchError(RuntimeError):
    """A request did not behave as the benchmark requires (e.g. a repeat that missed the cache)."""


def load_questions(path: Path) -> list[Question]:
    """The distinct questions of a qa.jsonl file, in file order."""
    questions: list[Question] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        text = str(record["question"])
        if text not in seen:
            seen.add(text)
            questions.append(Question(text, str(record.get("language", "en"))))
    return questions


def follow_up_for(question: Question, number: int) -> str:
    choices = FOLLOW_UPS.get(question.language, FOLLOW_UPS["en"])
    return choices[number % len(choices)]


def chat_event(
    question: str, session_id: str | None = None, bypass_cache: bool = False
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) POST /chat event."""
    body: dict[str, Any] = {"question": question}
    if session_id:
        body["session_id"] = session_id
    if bypass_cache:
        body["bypass_cache"] = True
    return {
        "version": "2.0",
        "rawPath": "/chat",
        "requestContext": {
            "http": {"method": "POST", "path": "/chat"},
            "requestId": uuid.uuid4().hex,
        },
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, ensure_ascii=False),
        "isBase64Encoded": False,
    }


class _Client:
    """Times `runtime.api` calls and checks each response is what its kind must be."""

    def __init__(self, runtime: Any) -> None:
        import boto3

        self._runtime = runtime
        self._stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        self._execution_prefix = runtime.state_machine_arn.replace(":stateMachine:", ":execution:")

    def execution_seconds(self, event: dict[str, Any]) -> float | None:
        """How long the emulator says the request's execution ran (named after the request id)."""
        arn = f"{self._execution_prefix}:{event['requestContext']['requestId']}"
        try:
            description = self._stepfunctions.describe_execution(executionArn=arn)
        except ClientError:  # a missing figure, not a failed benchmark
            return None
        if "stopDate" not in description:
            return None
        seconds: float = (description["stopDate"] - description["startDate"]).total_seconds()
        return seconds

    def ask(
        self, kind: str, question: str, session_id: str | None = None
    ) -> tuple[float, float | None, dict[str, Any]]:
        """(seconds, execution seconds or None, response body) of one checked request."""
        event = chat_event(question, session_id)
        started = time.perf_counter()
        response = self._runtime.api(event)
        elapsed = time.perf_counter() - started
        body: dict[str, Any] = json.loads(response["body"])
        if response["statusCode"] != 200:
            raise BenchError(f"{kind} {question!r}: HTTP {response['statusCode']} {body}")
        expected_cached = kind == HIT
        if body.get("cached") is not expected_cached:
            raise BenchError(
                f"{kind} {question!r}: cached={body.get('cached')!r}, expected {expected_cached}"
            )
        if kind == HIT and body["usage"]["llm_calls"] != 0:
            raise BenchError(f"hit {question!r} called a model: {body['usage']}")
        if session_id is not None and body.get("session_id") != session_id:
            raise BenchError(f"{kind} {question!r}: answered in session {body.get('session_id')}")
        return elapsed, self.execution_seconds(event), body


@dataclass
class _Pipeline:
    """Miss, hit and follow-up of successive questions, one step at a time."""

    candidates: deque[Question]
    wanted: int
    hits: deque[tuple[int, Question, str]] = field(default_factory=deque)
    follow_ups: deque[tuple[int, Question, str]] = field(default_factory=deque)
    started: int = 0

    def step(self, number: int) -> list[str]:
        jobs = []
        if self.started < self.wanted and self.candidates:
            jobs.append(MISS)
        if self.hits:
            jobs.append(HIT)
        if self.follow_ups:
            jobs.append(FOLLOW_UP)
        if not jobs:
            return []
        turn = number % len(jobs)
        return jobs[turn:] + jobs[:turn]


def _quiet_emulator() -> None:
    # moto's ASL interpreter logs an ERROR whenever `IsPresent` meets a missing path, which is
    # every cache miss; that is the emulator talking, not Concierge.
    logging.getLogger("moto").setLevel(logging.CRITICAL)


def _measure(client: _Client, questions: list[Question], count: int, result: LatencyResult) -> None:
    pipeline = _Pipeline(candidates=deque(questions), wanted=count)
    step = 0
    while jobs := pipeline.step(step):
        step += 1
        for kind in jobs:
            if kind == MISS:
                question = pipeline.candidates.popleft()
                elapsed, execution, body = client.ask(MISS, question.text)
                if not body["citations"]:
                    # Ungrounded answers are never cached, so this question cannot hit.
                    result.ungrounded.append(question.text)
                    continue
                pipeline.hits.append((pipeline.started, question, body["session_id"]))
                pipeline.started += 1
            elif kind == HIT:
                number, question, session_id = pipeline.hits.popleft()
                elapsed, execution, body = client.ask(HIT, question.text)
                pipeline.follow_ups.append((number, question, session_id))
            else:
                number, question, session_id = pipeline.follow_ups.popleft()
                text = follow_up_for(question, number)
                elapsed, execution, body = client.ask(FOLLOW_UP, text, session_id)
            result.samples[kind].append(elapsed)
            result.model_calls[kind].append(int(body["usage"]["llm_calls"]))
            if execution is not None:
                result.executions[kind].append(execution)
    result.questions = pipeline.started


def run(root: Path, count: int = 25, log: TextIO = sys.stderr) -> LatencyResult:
    """Build the sample index, start one runtime, warm up, then measure `count` questions."""
    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index
    from concierge_cli.local.runtime import LocalRuntime

    _quiet_emulator()
    result = LatencyResult()
    questions = load_questions(root / "knowledge" / "sample" / "qa.jsonl")
    result.candidates = len(questions)
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="concierge-bench-") as work:
        started = time.perf_counter()
        index = build_index([root / "knowledge" / "sample"])
        index_path = Path(work) / "index.json"
        write_index(index, index_path)
        result.index_seconds = time.perf_counter() - started
        result.index_chunks = len(index.chunks)

        started = time.perf_counter()
        with LocalRuntime(root, index_path, index.kb_version, environ=OFFLINE_MODELS) as runtime:
            result.startup_seconds = time.perf_counter() - started
            client = _Client(runtime)
            # Warm-up: every path a few times (imports, lazily built clients, the index load).
            for number, question in enumerate(WARM_UP):
                _, _, first = client.ask(MISS, question.text)
                if first["citations"]:
                    client.ask(HIT, question.text)
                    result.warm_up_requests += 1
                client.ask(FOLLOW_UP, follow_up_for(question, number), first["session_id"])
                result.warm_up_requests += 2
            print(f"  latency: warmed up with {result.warm_up_requests} requests", file=log)
            _measure(client, questions, count, result)
            print(f"  latency: measured {result.questions} questions", file=log)
    if result.questions < count:
        print(
            f"  latency: only {result.questions} of {count} questions were usable "
            f"({len(result.ungrounded)} ungrounded)",
            file=log,
        )
    result.wall_seconds = time.perf_counter() - wall
    return result
