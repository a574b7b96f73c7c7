"""Conversation replay: Concierge vs the naive chain on the same scripted conversations.

Every conversation of bench/conversations.jsonl is replayed twice, with the simulated models
of bench.simulated_models (`sim:cheap`, `sim:strong`), one conversation at a time:

* Concierge  `LocalRuntime` (moto's Step Functions emulator running statemachine/chat.asl.json,
             the real handlers in-process, DynamoDB in memory) with classify and condense on
             `sim:cheap` and answer on `sim:strong`; one chat session per conversation, so a
             follow-up is condensed against its history, and the answer cache as the product
             ships it. Timed with `time.perf_counter()` around `runtime.api(event)`.
* Concierge, cache off
             the same runtime, every request with `bypass_cache` (nothing read from the cache
             or written to it): what the routing alone gives, measured in the same run.
* naive      the same step functions (concierge.steps.classify / condense / retrieve / answer)
             called in-process, one after the other: classify -> condense -> retrieve ->
             answer, all on `sim:strong`, condense on every question (with empty history on a
             first turn), history kept in memory, no cache. Timed around the whole sequence.

Both use the same knowledge base (knowledge/sample, indexed once), the same settings and the
same price table (CONCIERGE_MODEL_PRICES); costs and call counts come from the product's own
usage records (the API response's `usage`, the execution's per-step usage, the naive steps'
StepUsage). Which chain goes first alternates conversation by conversation, so drift and noise
on the machine fall on both.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from bench import conversations as scripted
from bench.latency import REGION, chat_event
from bench.simulated_models import CHEAP, STRONG, CallLog, installed, price_overrides, simulated

CONCIERGE, CACHE_OFF, NAIVE = "Concierge", "Concierge, cache off", "naive"
CHAINS = (CONCIERGE, CACHE_OFF, NAIVE)
# Written for the warm-up only; never asked in the replay (checked).
WARM_UP = (
    ("Do you ship to Switzerland?", "And how much is it?"),
    ("¿Tenéis sacos de dormir?", "¿Y cuánto pesan?"),
)
DEFAULT_SCALE = 0.3


def _naive_condense_prompt() -> Any:
    """The reference architecture's condense prompt: a plain rewrite, no classification (the
    text of Concierge's condense-1, before condense learned to classify too)."""
    from concierge.prompt_library import Prompt

    return Prompt(
        name="condense",
        version="naive-condense",
        system=(
            "You rewrite the user's latest question so that it can be understood without the "
            "conversation.\nKeep the user's language. Replace pronouns with what they refer "
            "to. Do not answer the question.\nReply with the rewritten question only."
        ),
        template=(
            "Conversation so far (oldest first):\n$history\n\nLatest question: $question"
            "\n\nStandalone question:"
        ),
        max_tokens=200,
        temperature=0.0,
        top_p=1.0,
    )


class BenchError(RuntimeError):
    """A response broke the product's contract (a cached follow-up, a hit that called a model)."""


@dataclass(frozen=True)
class StepFigures:
    """What one step of one turn spent on models."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


NO_STEP = StepFigures()


@dataclass(frozen=True)
class TurnResult:
    turn: scripted.Turn
    seconds: float
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached: bool
    grounded: bool
    # Of `seconds`, how long a simulated model was running (overlapping calls counted once).
    model_seconds: float
    # Per step that ran: classify, condense, answer.
    steps: dict[str, StepFigures] = field(default_factory=dict)

    def step(self, name: str) -> StepFigures:
        return self.steps.get(name, NO_STEP)


@dataclass
class ReplayResult:
    scale: float
    mix: scripted.Mix
    turns: dict[str, list[TurnResult]] = field(default_factory=lambda: {c: [] for c in CHAINS})
    logs: dict[str, CallLog] = field(default_factory=lambda: {c: CallLog() for c in CHAINS})
    index_chunks: int = 0
    warm_up_turns: int = 0
    # Concierge calls/costs without a per-step record (execution output not readable).
    steps_missing: int = 0
    wall_seconds: float = 0.0
    chain_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CHAINS, 0.0))


# -- the naive chain --------------------------------------------------------------------------
class NaiveChain:
    """classify -> condense -> retrieve -> answer, all on the strong model, no cache."""

    def __init__(self, index_path: Path, log: CallLog, scale: float) -> None:
        from concierge.adapters.retrieval.local_index import load_index
        from concierge.config import (
            ApiSettings,
            ClassifySettings,
            CondenseSettings,
            ModelRuntimeSettings,
            RetrieveSettings,
            load,
        )
        from concierge.pricing import PriceTable
        from concierge.steps.calls import ModelRoute, RetryPolicy

        # The settings the runtime set in the environment, so both chains run alike; only the
        # models differ.
        strong = {f"CONCIERGE_{step}_MODEL": STRONG.spec for step in ("CLASSIFY", "CONDENSE")}
        environ = {**os.environ, **strong}
        self.classify_settings = load(ClassifySettings, environ)
        self.condense_settings = load(CondenseSettings, environ)
        self.top_k = load(RetrieveSettings, environ).top_k
        self.budget_ms = load(ApiSettings, environ).request_budget_ms
        runtime = load(ModelRuntimeSettings, environ)
        self.retriever = load_index(str(index_path))

        def route(step: str) -> ModelRoute:
            return ModelRoute(
                step=step,
                models=[simulated(STRONG.spec, scale, log)],
                prices=PriceTable(runtime.model_prices),
                policy=RetryPolicy(
                    attempts_per_model=runtime.model_attempts,
                    base_delay_s=runtime.retry_base_delay_ms / 1000,
                    max_delay_s=runtime.retry_max_delay_ms / 1000,
                ),
            )

        self.routes = {step: route(step) for step in ("classify", "condense", "answer")}

    def ask(self, question: str, history: list[tuple[str, str]]) -> tuple[str, bool, list[Any]]:
        """(answer, grounded, the steps' StepUsage) of one question with its session history."""
        from concierge.models.state import AnswerInput, ClassifyInput, RetrieveInput
        from concierge.steps.answer import answer
        from concierge.steps.classify import classify
        from concierge.steps.retrieve import retrieve

        request_id = uuid.uuid4().hex
        deadline_ms = int(time.time() * 1000) + self.budget_ms
        classification = classify(
            ClassifyInput(request_id=request_id, question=question, deadline_ms=deadline_ms),
            self.classify_settings,
            self.routes["classify"],
        )
        condensed, condense_usage = self._condense(request_id, question, history, deadline_ms)
        retrieval = retrieve(
            RetrieveInput(
                request_id=request_id,
                question=condensed,
                category=classification.category,
                language=classification.language,
                deadline_ms=deadline_ms,
            ),
            self.retriever,
            self.top_k,
        )
        answered = answer(
            AnswerInput(
                request_id=request_id,
                question=condensed,
                language=classification.language,
                passages=retrieval.passages,
                deadline_ms=deadline_ms,
            ),
            self.routes["answer"],
        )
        usages = [classification.usage, condense_usage, answered.usage]
        return answered.answer, bool(answered.citations), usages

    def _condense(
        self, request_id: str, question: str, history: list[tuple[str, str]], deadline_ms: int
    ) -> tuple[str, Any]:
        """The reference architecture's condense: a plain rewrite of every question (with no
        history on a first turn), asked separately from classify."""
        from concierge.models.state import HistoryTurn
        from concierge.steps.calls import call_model
        from concierge.steps.condense import transcript

        prompt = _naive_condense_prompt()
        turns = [HistoryTurn(question=asked, answer=said) for asked, said in history]
        reply, usage = call_model(
            self.routes["condense"],
            "condense",
            prompt,
            system=prompt.render_system(),
            user=prompt.render(
                history=transcript(turns, self.condense_settings.history_tokens) or "(none)",
                question=question,
            ),
            inputs={
                "question": question,
                "history": [turn.model_dump() for turn in turns],
                "categories": {},
                "default_category": self.classify_settings.default_category,
                "reply_format": "text",
            },
            deadline_ms=deadline_ms,
        )
        return reply.text.strip().strip('"').strip() or question, usage


# -- Concierge through the local runtime -----------------------------------------------------
class ConciergeClient:
    def __init__(self, runtime: Any) -> None:
        import boto3

        self._runtime = runtime
        self._stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        self._execution_prefix = runtime.state_machine_arn.replace(":stateMachine:", ":execution:")

    def ask(
        self, question: str, session_id: str, bypass_cache: bool = False
    ) -> tuple[float, dict[str, Any], str]:
        """(seconds, response body, request id) of one turn in `session_id`."""
        event = chat_event(question, session_id, bypass_cache=bypass_cache)
        started = time.perf_counter()
        response = self._runtime.api(event)
        elapsed = time.perf_counter() - started
        body: dict[str, Any] = json.loads(response["body"])
        if response["statusCode"] != 200:
            raise BenchError(f"{question!r}: HTTP {response['statusCode']} {body}")
        if body.get("session_id") != session_id:
            raise BenchError(f"{question!r}: answered in session {body.get('session_id')}")
        return elapsed, body, str(event["requestContext"]["requestId"])

    def step_usage(self, request_id: str) -> list[dict[str, Any]] | None:
        """The per-step usage the execution returned (read after the timing), or None."""
        arn = f"{self._execution_prefix}:{request_id}"
        try:
            description = self._stepfunctions.describe_execution(executionArn=arn)
        except ClientError:
            return None
        output = json.loads(description.get("output") or "null")
        if not isinstance(output, dict):
            return None
        usage = [item for item in output.get("usage") or [] if isinstance(item, dict)]
        return usage


def _by_step(usages: list[dict[str, Any]]) -> dict[str, StepFigures]:
    steps: dict[str, StepFigures] = {}
    for usage in usages:
        name = str(usage["step"])
        before = steps.get(name, NO_STEP)
        steps[name] = StepFigures(
            calls=before.calls + int(usage["llm_calls"]),
            input_tokens=before.input_tokens + int(usage["input_tokens"]),
            output_tokens=before.output_tokens + int(usage["output_tokens"]),
            cost_usd=before.cost_usd + float(usage["cost_usd"]),
        )
    return steps


def _replay_concierge(
    client: ConciergeClient,
    conversation: scripted.Conversation,
    session_id: str,
    log: CallLog,
    result: ReplayResult | None,
    chain: str = CONCIERGE,
) -> None:
    bypass = chain == CACHE_OFF
    for turn in conversation.turns:
        mark = log.mark()
        seconds, body, request_id = client.ask(turn.text, session_id, bypass_cache=bypass)
        model_seconds = log.busy_seconds(mark)
        usage = body["usage"]
        if bypass and body["cached"]:
            raise BenchError(f"{turn.text!r} was served from the cache with the cache off")
        # A first-turn hit calls no model; a follow-up hit only the condense that keyed it.
        allowed_calls = 1 if turn.is_follow_up else 0
        if body["cached"] and usage["llm_calls"] > allowed_calls:
            raise BenchError(f"cache hit {turn.text!r} called a model: {usage}")
        if result is None:
            continue
        steps = client.step_usage(request_id)
        if steps is None:
            result.steps_missing += 1
        result.turns[chain].append(
            TurnResult(
                turn=turn,
                seconds=seconds,
                llm_calls=int(usage["llm_calls"]),
                input_tokens=int(usage["input_tokens"]),
                output_tokens=int(usage["output_tokens"]),
                cost_usd=float(usage["cost_usd"]),
                cached=bool(body["cached"]),
                grounded=bool(body["citations"]),
                model_seconds=model_seconds,
                steps=_by_step(steps or []),
            )
        )


def _replay_naive(
    chain: NaiveChain,
    conversation: scripted.Conversation,
    log: CallLog,
    result: ReplayResult | None,
) -> None:
    history: list[tuple[str, str]] = []
    for turn in conversation.turns:
        mark = log.mark()
        started = time.perf_counter()
        said, grounded, usages = chain.ask(turn.text, history)
        seconds = time.perf_counter() - started
        model_seconds = log.busy_seconds(mark)
        history.append((turn.text, said))
        if result is None:
            continue
        records = [usage.model_dump() for usage in usages]
        result.turns[NAIVE].append(
            TurnResult(
                turn=turn,
                seconds=seconds,
                llm_calls=sum(usage.llm_calls for usage in usages),
                input_tokens=sum(usage.input_tokens for usage in usages),
                output_tokens=sum(usage.output_tokens for usage in usages),
                cost_usd=round(sum(usage.cost_usd for usage in usages), 8),
                cached=False,
                grounded=grounded,
                model_seconds=model_seconds,
                steps=_by_step(records),
            )
        )


def _warm_up_conversations() -> list[scripted.Conversation]:
    return [
        scripted.Conversation(
            id=f"warm-up-{number}",
            language="xx",
            turns=tuple(
                scripted.Turn(f"warm-up-{number}", position, text, "xx", "warm-up", "")
                for position, text in enumerate(texts)
            ),
        )
        for number, texts in enumerate(WARM_UP)
    ]


def _check_no_overlap(conversations: list[scripted.Conversation]) -> None:
    from concierge.cache_keys import normalise_question

    replayed = {normalise_question(c.turns[0].text) for c in conversations}
    for texts in WARM_UP:
        if normalise_question(texts[0]) in replayed:
            raise BenchError(f"warm-up question {texts[0]!r} is also in the replay")


def run(
    root: Path,
    scale: float = DEFAULT_SCALE,
    path: Path = scripted.DEFAULT_PATH,
    log: TextIO = sys.stderr,
) -> ReplayResult:
    """Index the sample KB, start one runtime with the simulated models, replay every
    conversation through both chains (after a warm-up of both), return the records."""
    import logging

    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index
    from concierge_cli.local.runtime import LocalRuntime

    # moto logs expected evaluation failures (IsPresent on a cache miss) at ERROR.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    conversations = scripted.load(path)
    _check_no_overlap(conversations)
    result = ReplayResult(scale=scale, mix=scripted.mix(conversations))
    environ = {
        "CONCIERGE_CLASSIFY_MODEL": CHEAP.spec,
        "CONCIERGE_CONDENSE_MODEL": CHEAP.spec,
        "CONCIERGE_ANSWER_MODEL": STRONG.spec,
        "CONCIERGE_MODEL_PRICES": price_overrides(),
    }
    wall = time.perf_counter()
    warm_up_log = CallLog()
    with tempfile.TemporaryDirectory(prefix="concierge-replay-") as work:
        index = build_index([root / "knowledge" / "sample"])
        index_path = Path(work) / "index.json"
        write_index(index, index_path)
        result.index_chunks = len(index.chunks)
        run_tag = uuid.uuid4().hex[:8]
        with (
            installed(scale, result.logs[CONCIERGE]),
            LocalRuntime(root, index_path, index.kb_version, environ=environ) as runtime,
        ):
            client = ConciergeClient(runtime)
            naive = NaiveChain(index_path, result.logs[NAIVE], scale)
            warm_naive = NaiveChain(index_path, warm_up_log, scale)
            for conversation in _warm_up_conversations():
                session_id = f"warm-{run_tag}-{conversation.id}"
                _replay_concierge(client, conversation, session_id, result.logs[CONCIERGE], None)
                _replay_naive(warm_naive, conversation, warm_up_log, None)
                result.warm_up_turns += len(conversation.turns)
            # The warm-up's Concierge calls are not part of the replay.
            result.logs[CONCIERGE].reset()
            print(f"  replay: warmed up with {result.warm_up_turns} turns per chain", file=log)
            for number, conversation in enumerate(conversations):
                # Each chain goes first, second and third in turn, so drift falls on all.
                shift = number % len(CHAINS)
                for chain in CHAINS[shift:] + CHAINS[:shift]:
                    tag = "off" if chain == CACHE_OFF else "on"
                    session_id = f"replay-{run_tag}-{tag}-{conversation.id}"
                    started = time.perf_counter()
                    if chain == NAIVE:
                        _replay_naive(naive, conversation, result.logs[NAIVE], result)
                    else:
                        # Both Concierge chains run in one runtime, so they share one log.
                        logs = result.logs[CONCIERGE]
                        _replay_concierge(client, conversation, session_id, logs, result, chain)
                    result.chain_seconds[chain] += time.perf_counter() - started
                if (number + 1) % 10 == 0:
                    print(f"  replay: {number + 1}/{len(conversations)} conversations", file=log)
    result.wall_seconds = time.perf_counter() - wall
    return result
