"""The classification cascade: a first turn is classified from the knowledge base itself when
that is clear, and the classify model is asked only when it is not.

The local classifier searches the whole index (no filter) for the question and lets the
categories of the top `DEPTH` passages vote, the passage at rank r with weight 1/r²: the first
passage counts most, and a run of passages from one category outweighs a stray one. The vote
decides when the winning category holds at least `threshold` of the weight, is on the menu,
and the question's language, detected locally, is one the knowledge base covers. A question in
a language the knowledge base hardly has documents in always goes to the model: only the model
can write its search_query (the question in the knowledge base's main language).

The threshold is calibrated on labelled questions (`python -m bench.run --only cascade`,
BENCHMARKS.md): it is the setting's default. A question decided here costs no model call; its
usage says so (`model` "local", 0 calls), and the step counts it (ClassifiedLocally).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from concierge.adapters.retrieval.port import Retriever, SearchFilter
from concierge.models.state import Passage
from concierge.steps.structured import CategoryMenu
from concierge.text import detect_language

# The usage's `model` of a classification the local classifier made.
LOCAL_MODEL = "local"
DEPTH = 5


@dataclass(frozen=True)
class Vote:
    """What the top passages say: the leading category (None without passages) and its share
    of the weight."""

    category: str | None
    confidence: float


def vote(passages: list[Passage]) -> Vote:
    weights: dict[str, float] = defaultdict(float)
    for rank, passage in enumerate(passages, start=1):
        weights[passage.category] += 1 / rank**2
    total = sum(weights.values())
    if not total:
        return Vote(None, 0.0)
    # Ties go to the category of the better-ranked passage (dicts keep first-seen order).
    leader = max(weights, key=lambda category: weights[category])
    return Vote(leader, weights[leader] / total)


@dataclass(frozen=True)
class Decision:
    category: str
    language: str
    confidence: float


class LocalClassifier:
    def __init__(self, retriever: Retriever, threshold: float, depth: int = DEPTH) -> None:
        self.retriever = retriever
        self.threshold = threshold
        self.depth = depth

    def poll(self, question: str) -> Vote:
        """The vote of the top passages of an unfiltered search, whatever its confidence."""
        return vote(self.retriever.search(question, SearchFilter(), self.depth))

    def decide(self, question: str, menu: CategoryMenu) -> Decision | None:
        """The classification, when the vote is clear enough; None: ask the model."""
        language = detect_language(question, default="")
        if not language or not menu.catalog.languages or not menu.covers(language):
            return None
        result = self.poll(question)
        if result.category not in menu.descriptions or result.confidence < self.threshold:
            return None
        return Decision(result.category, language, result.confidence)
