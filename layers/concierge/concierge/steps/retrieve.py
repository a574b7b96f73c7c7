"""Retrieve: search the knowledge base with the classification as filter, relaxing it when empty;
then leave out the passages that carry instructions for the assistant."""

from __future__ import annotations

from concierge.adapters.retrieval.port import Retriever, SearchFilter
from concierge.deadline import seconds_left
from concierge.models.http import Guardrail
from concierge.models.state import Passage, Retrieval, RetrieveInput
from concierge.safety.screen import screen

# A knowledge-base call may take up to its 3-second read timeout.
MIN_SEARCH_SECONDS = 3.5


def retrieve(
    request: RetrieveInput,
    retriever: Retriever,
    limit: int,
    min_score: float | None = None,
    *,
    screened: bool = True,
) -> Retrieval:
    """Passages for the question, whichever backend `retriever` is. With `min_score`, passages
    scoring below it do not count: a filter that finds only those is relaxed like an empty one.
    With `screened`, passages the screen flags are left out, and the retrieval says so."""
    found = _search(request, retriever, limit, min_score)
    return _screened(found) if screened else found


def _screened(found: Retrieval) -> Retrieval:
    """`found` without the passages that carry injected instructions. A knowledge base that was
    ingested without `--strict`, or that someone else fills, may hold them: the model never
    reads them, and the response tells the user something was left out."""
    kept: list[Passage] = []
    reasons: dict[str, None] = {}
    for passage in found.passages:
        verdict = screen(passage.text, "document")
        if verdict.flagged:
            reasons.update(dict.fromkeys(verdict.reasons))
        else:
            kept.append(passage)
    if not reasons:
        return found
    left_out = Guardrail(action="filtered", source="passages", reasons=list(reasons))
    return found.model_copy(update={"passages": kept, "guardrail": left_out})


def _search(
    request: RetrieveInput, retriever: Retriever, limit: int, min_score: float | None
) -> Retrieval:
    # A misclassified category must not hide the answer: widen the filter step by step.
    attempts = (
        ("category+language", SearchFilter(category=request.category, language=request.language)),
        ("language", SearchFilter(language=request.language)),
        ("none", SearchFilter()),
    )
    for number, (name, search_filter) in enumerate(attempts):
        if number and seconds_left(request.deadline_ms) < MIN_SEARCH_SECONDS:
            # A wider search would not finish inside the request's budget: stop with none, and
            # the answer says nothing was found rather than the request timing out.
            break
        passages = retriever.search(request.question, search_filter, limit)
        if min_score is not None:
            passages = [passage for passage in passages if passage.score >= min_score]
        if passages:
            return Retrieval(passages=passages, filter_used=name)
    return Retrieval(passages=[], filter_used="none")
