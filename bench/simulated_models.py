"""Simulated language models for the replay: the offline model's content, a model's latency.

A `SimulatedModel` is a ChatModel (see concierge.adapters.llm.port) with spec `sim:cheap` or
`sim:strong`. It lets the `offline` model write the reply, so classify output stays valid and
answers stay grounded in the passages, then sleeps the profile's latency and returns the reply
under its own spec, with token counts estimated from the real rendered prompt
(`estimate_tokens`, as the offline model does).

One correction to the offline content: when the offline classifier finds no category (no
word of the question matches a category description, e.g. a short follow-up such as "And how
heavy is it?"), it names the default category, which is not in the configured list, and the
classify step re-asks the model once. A real model asked to pick one of the listed categories
hardly ever does that, and the extra call would fall on the naive chain's strong model and
flatter Concierge. So the simulated model replaces an unlisted category by a listed one: the
category whose name and description share the most word beginnings (4 letters) with the
question, else the first listed. Both chains get the same choice; `CallLog.corrected` counts
them.

Its price is not computed here: the bench
hands the profiles' prices to the product through CONCIERGE_MODEL_PRICES (`price_overrides`),
so every cost in the report comes from the product's own price table code.

`installed(...)` replaces `concierge.adapters.llm.registry.model_for` for the duration of a
`with` block, so that `route_for` (which looks `model_for` up when it builds a route) resolves
`sim:*` specs; every other spec goes to the original function. It clears the `route_for`
cache on the way in and out, and puts the original back even when the block fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from concierge.adapters.llm.offline import OfflineModel
from concierge.adapters.llm.port import ChatModel, ModelReply, ModelRequest, estimate_tokens
from concierge.config import ModelRuntimeSettings
from concierge.text import STOPWORDS, words

SIM_PREFIX = "sim:"


@dataclass(frozen=True)
class Profile:
    """Latency (base + per output token, in ms) and list price (USD per 1,000 tokens)."""

    spec: str
    base_ms: float
    per_output_token_ms: float
    input_usd_per_1k: float
    output_usd_per_1k: float
    priced_as: str

    def latency_ms(self, output_tokens: int) -> float:
        return self.base_ms + self.per_output_token_ms * output_tokens


# Latencies are assumptions of the order of a small and a large hosted model (time to the
# first token, then output speed), not measurements. Prices are Bedrock on-demand list prices
# (us-east-1) of Claude 3 Haiku and Claude 3.5 Sonnet, as in the product's prices.toml.
CHEAP = Profile(
    spec="sim:cheap",
    base_ms=300,
    per_output_token_ms=2,
    input_usd_per_1k=0.00025,
    output_usd_per_1k=0.00125,
    priced_as="Claude 3 Haiku",
)
STRONG = Profile(
    spec="sim:strong",
    base_ms=900,
    per_output_token_ms=10,
    input_usd_per_1k=0.003,
    output_usd_per_1k=0.015,
    priced_as="Claude 3.5 Sonnet",
)
PROFILES = {profile.spec: profile for profile in (CHEAP, STRONG)}


def price_overrides() -> str:
    """The CONCIERGE_MODEL_PRICES value that prices both simulated models."""
    return json.dumps(
        {
            profile.spec: {"input": profile.input_usd_per_1k, "output": profile.output_usd_per_1k}
            for profile in PROFILES.values()
        }
    )


@dataclass
class CallLog:
    """Every simulated call: (spec, task) counts and when the model was "busy" (the interval
    it slept, perf_counter seconds). Thread-safe: the emulator runs Parallel branches in
    threads."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    intervals: list[tuple[float, float]] = field(default_factory=list)
    # Classify replies whose unlisted category was replaced (see the module docstring).
    corrected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self, spec: str, task: str, started: float, ended: float, corrected: bool = False
    ) -> None:
        with self._lock:
            self.calls[(spec, task)] += 1
            self.intervals.append((started, ended))
            self.corrected += corrected

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.intervals.clear()
            self.corrected = 0

    def mark(self) -> int:
        with self._lock:
            return len(self.intervals)

    def busy_seconds(self, since: int) -> float:
        """How long at least one model call was running, over the calls recorded since `mark`
        returned `since` (overlapping calls, e.g. of a Parallel state, count once)."""
        with self._lock:
            spans = sorted(self.intervals[since:])
        busy, end = 0.0, float("-inf")
        for started, ended in spans:
            if ended <= end:
                continue
            busy += ended - max(started, end)
            end = ended
        return busy

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())


class SimulatedModel:
    """Offline content, simulated latency (scaled by `scale`), the profile's spec."""

    def __init__(
        self,
        profile: Profile,
        scale: float,
        log: CallLog | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = profile.spec
        self.profile = profile
        self._scale = scale
        self._log = log
        self._sleep = sleep
        self._content = OfflineModel()

    def generate(self, request: ModelRequest) -> ModelReply:
        text = self._content.generate(request).text
        corrected = False
        if request.task in ("classify", "condense"):
            text, corrected = listed_category(text, request.inputs)
        if request.inputs.get("reply_format") == "text":
            # The naive chain's plain condense prompt asks for the rewritten question only.
            text = json.loads(text)["question"]
        output_tokens = estimate_tokens(text)
        started = time.perf_counter()
        self._sleep(self.profile.latency_ms(output_tokens) * self._scale / 1000)
        if self._log is not None:
            self._log.record(self.spec, request.task, started, time.perf_counter(), corrected)
        return ModelReply(
            text=text,
            model=self.spec,
            input_tokens=estimate_tokens(request.system + request.prompt),
            output_tokens=output_tokens,
            estimated=True,
        )


_STOPWORDS = frozenset().union(*STOPWORDS.values())
_PREFIX = 4


def _beginnings(text: str) -> set[str]:
    return {word[:_PREFIX] for word in words(text) if len(word) >= _PREFIX} - _STOPWORDS


def listed_category(text: str, inputs: dict[str, Any]) -> tuple[str, bool]:
    """The offline classify (or condense) reply with a listed category, and whether it had to
    be replaced."""
    reply = json.loads(text)
    categories: dict[str, str] = inputs["categories"]
    if reply.get("category") in categories or not categories:
        return text, False
    question = _beginnings(inputs["question"])
    overlap = {
        name: len(question & _beginnings(f"{name} {description}"))
        for name, description in categories.items()
    }
    # max() keeps the first of equals, so no overlap at all means the first listed category.
    reply["category"] = max(categories, key=lambda name: overlap[name])
    return json.dumps(reply), True


def simulated(spec: str, scale: float, log: CallLog | None = None) -> SimulatedModel:
    try:
        return SimulatedModel(PROFILES[spec], scale, log)
    except KeyError:
        raise ValueError(f"unknown simulated model {spec!r}: use {', '.join(PROFILES)}") from None


@contextmanager
def installed(scale: float, log: CallLog) -> Iterator[None]:
    """`sim:*` specs resolvable through the product's registry while the block runs."""
    from concierge.adapters.llm import registry

    original = registry.model_for

    def model_for(spec: str, settings: ModelRuntimeSettings | None = None) -> ChatModel:
        if spec.startswith(SIM_PREFIX):
            return simulated(spec, scale, log)
        return original(spec, settings)

    registry.model_for = model_for
    registry.route_for.cache_clear()
    try:
        yield
    finally:
        registry.model_for = original
        registry.route_for.cache_clear()
