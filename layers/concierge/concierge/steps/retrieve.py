"""Retrieve: search the knowledge base with the classification as filter, relaxing it when empty;
then leave out the passages that carry instructions for the assistant.

A question in a language the knowledge base has few or no documents in comes with
`search_query`, the question in the knowledge base's main language (from classify or condense).
Each search is then made twice, with the question under the filter and with the translation
under the same filter less the language (the translation's language is the knowledge base's),
and the two rankings are fused by reciprocal rank. The answer is still written in the
question's language: only the search uses the translation."""

from __future__ import annotations

from concierge.adapters.retrieval.port import Query, Retriever, SearchFilter, fuse, search_each
from concierge.deadline import seconds_left
from concierge.models.http import Guardrail
from concierge.models.state import Passage, Retrieval, RetrieveInput
from concierge.safety.screen import screen

# A knowledge-base call may take up to its 3-second read timeout (a question and its translation
# are searched together, so a step of the ladder takes one call's time).
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
        rankings = search_each(retriever, _queries(request, search_filter), limit)
        if min_score is not None:
            rankings = [[p for p in ranking if p.score >= min_score] for ranking in rankings]
        passages = fuse(rankings, limit)
        if passages:
            return Retrieval(passages=passages, filter_used=name)
    return Retrieval(passages=[], filter_used="none")


def _queries(request: RetrieveInput, search_filter: SearchFilter) -> list[Query]:
    """The question under the filter, and its translation, if any, without the language."""
    queries: list[Query] = [(request.question, search_filter)]
    translation = (request.search_query or "").strip()
    if translation and translation.casefold() != request.question.strip().casefold():
        queries.append((translation, search_filter.model_copy(update={"language": None})))
    return queries
