"""Simulated models for the replay, `sim:cheap` and `sim:strong`: the offline model's replies
with a hosted model's latency, spec and list price."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from concierge.adapters.llm.offline import OfflineModel
from concierge.adapters.llm.port import ModelReply, ModelRequest, estimate_tokens
from concierge.text import STOPWORDS, words


@dataclass(frozen=True)
class Profile:
    """Latency (base + per output token, ms) and list price (USD per 1,000 tokens)."""

    spec: str
    base_ms: float
    per_output_token_ms: float
    input_usd_per_1k: float
    output_usd_per_1k: float
    priced_as: str


# Latencies: assumptions for a small and a large hosted model. Prices: Bedrock list prices.
CHEAP = Profile("sim:cheap", 300, 2, 0.00025, 0.00125, "Claude 3 Haiku")
STRONG = Profile("sim:strong", 900, 10, 0.003, 0.015, "Claude 3.5 Sonnet")
PROFILES = {profile.spec: profile for profile in (CHEAP, STRONG)}
# For the product's price table (CONCIERGE_MODEL_PRICES), so every cost is computed by it.
PRICES = json.dumps(
    {p.spec: {"input": p.input_usd_per_1k, "output": p.output_usd_per_1k} for p in (CHEAP, STRONG)}
)


@dataclass
class CallLog:
    """Every simulated call: the intervals a model was busy (perf_counter seconds).
    Thread-safe: the emulator runs Parallel branches in threads."""

    intervals: list[tuple[float, float]] = field(default_factory=list)
    corrected: int = 0  # classify replies whose unlisted category was replaced
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, span: tuple[float, float], corrected: bool) -> None:
        with self._lock:
            self.intervals.append(span)
            self.corrected += corrected

    def reset(self) -> None:
        with self._lock:
            self.intervals.clear()
            self.corrected = 0

    def mark(self) -> int:
        with self._lock:
            return len(self.intervals)

    def busy_seconds(self, since: int) -> float:
        """How long a model was running, over the calls since `mark` returned `since`
        (overlapping calls count once)."""
        with self._lock:
            spans = sorted(self.intervals[since:])
        busy, end = 0.0, float("-inf")
        for started, ended in spans:
            if ended > end:
                busy += ended - max(started, end)
                end = ended
        return busy

    @property
    def total(self) -> int:
        with self._lock:
            return len(self.intervals)


class SimulatedModel:
    """A ChatModel: offline content, the profile's latency times `scale`, the profile's spec."""

    def __init__(self, profile: Profile, scale: float, log: CallLog) -> None:
        self.spec, self.profile, self._scale, self._log = profile.spec, profile, scale, log
        self._content = OfflineModel()

    def generate(self, request: ModelRequest) -> ModelReply:
        text = self._content.generate(request).text
        corrected = False
        if request.task in ("classify", "condense"):
            text, corrected = listed_category(text, request.inputs)
        if request.inputs.get("reply_format") == "text":  # the naive chain's plain rewrite
            text = json.loads(text)["question"]
        output_tokens = estimate_tokens(text)
        profile = self.profile
        started = time.perf_counter()
        time.sleep(
            (profile.base_ms + profile.per_output_token_ms * output_tokens) * self._scale / 1000
        )
        self._log.record((started, time.perf_counter()), corrected)
        return ModelReply(
            text=text,
            model=self.spec,
            input_tokens=estimate_tokens(request.system + request.prompt),
            output_tokens=output_tokens,
            estimated=True,
        )


_STOPWORDS = frozenset().union(*STOPWORDS.values())


def _beginnings(text: str) -> set[str]:
    return {word[:4] for word in words(text) if len(word) >= 4} - _STOPWORDS


def listed_category(text: str, inputs: dict[str, Any]) -> tuple[str, bool]:
    """The offline reply with a listed category: an unlisted one (the default, when no word
    matched) becomes the listed category sharing the most word beginnings with the question,
    else the first listed. Whether it was replaced."""
    reply = json.loads(text)
    categories: dict[str, str] = inputs["categories"]
    if reply.get("category") in categories or not categories:
        return text, False
    question = _beginnings(inputs["question"])
    overlap = {name: len(question & _beginnings(f"{name} {d}")) for name, d in categories.items()}
    reply["category"] = max(categories, key=lambda name: overlap[name])  # first of equals
    return json.dumps(reply), True


@contextmanager
def installed(scale: float, log: CallLog) -> Iterator[None]:
    """`sim:*` specs resolvable through the product's model registry while the block runs:
    every call this module makes into concierge's wiring is here."""
    from concierge import wiring
    from concierge.adapters.llm import registry

    original = registry.model_for

    def model_for(spec: str, *args: Any) -> Any:
        if spec in PROFILES:
            return SimulatedModel(PROFILES[spec], scale, log)
        return original(spec, *args)

    registry.model_for = model_for
    wiring.route.cache_clear()  # routes built before now hold the real adapters
    try:
        yield
    finally:
        registry.model_for = original
        wiring.route.cache_clear()
