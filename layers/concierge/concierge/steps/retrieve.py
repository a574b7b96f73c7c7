"""Retrieve: search the knowledge base with the classification as filter, and without it to
check it; then leave out the passages that carry instructions for the assistant.

The classification is a guess (a cheap model's, or the local vote's), so it is checked against
a search with no filter, made in the same round trip. When that search's best passage is one
the filter found too, the filter's passages are used. When it is not, the classification is in
doubt: the filter's best passages come first (a right classification keeps most of the
places), and the last quarter (at least one passage) goes to the best of those the filter hid
(`widened` counts them), so a misclassified question still gets the passage that answers it.
A filter that finds nothing is relaxed to the language alone, then to none.

A question in a language the knowledge base has few or no documents in comes with
`search_query`, the question in the knowledge base's main language (from classify or condense).
Each search is then made twice, with the question under the filter and with the translation
under the same filter less the language (the translation's language is the knowledge base's),
and the two rankings are fused by reciprocal rank. The answer is still written in the
question's language: only the search uses the translation."""

from __future__ import annotations

from concierge.adapters.retrieval.port import (
    Query,
    Retriever,
    SearchFilter,
    fuse,
    passage_key,
    search_each,
)
from concierge.deadline import seconds_left
from concierge.models.http import Guardrail
from concierge.models.state import FilterName, Passage, Retrieval, RetrieveInput
from concierge.safety.screen import screen

# A knowledge-base call may take up to its 3-second read timeout (a question and its translation
# are searched together, so a step of the ladder takes one call's time).
MIN_SEARCH_SECONDS = 3.5
# When the classification is in doubt, 1 / this of the passages (at least one) go to those its
# filter hid: more costs questions the classification got right (BENCHMARKS.md, "Citations").
_HIDDEN_SHARE = 4


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
    # The first round trip searches under the filter and without it (to check the filter);
    # a filter that finds nothing is widened to the language, then to the search without it.
    attempts: tuple[tuple[FilterName, SearchFilter], ...] = (
        ("category+language", SearchFilter(category=request.category, language=request.language)),
        ("language", SearchFilter(language=request.language)),
    )
    unfiltered: list[Passage] = []
    for number, (name, search_filter) in enumerate(attempts):
        if number == 0:
            filtered, unfiltered = _rankings(
                request, retriever, [search_filter, SearchFilter()], limit, min_score
            )
        elif seconds_left(request.deadline_ms) < MIN_SEARCH_SECONDS:
            # Another search would not finish inside the request's budget: stop with what the
            # first round trip found rather than the request timing out.
            break
        else:
            (filtered,) = _rankings(request, retriever, [search_filter], limit, min_score)
        if filtered:
            return _checked(filtered, unfiltered, limit, name)
    return Retrieval(passages=unfiltered, filter_used="none")


def _checked(
    filtered: list[Passage], unfiltered: list[Passage], limit: int, name: FilterName
) -> Retrieval:
    """The filter's passages when the search without it agrees (its best passage is one the
    filter found too); otherwise the filter's best ones, then, in the last quarter (at least
    one passage), the best of those the filter hid."""
    inside = {passage_key(passage) for passage in filtered}
    if not unfiltered or passage_key(unfiltered[0]) in inside:
        return Retrieval(passages=filtered, filter_used=name)
    hidden = [p for p in unfiltered if passage_key(p) not in inside][
        : max(1, limit // _HIDDEN_SHARE)
    ]
    passages = filtered[: limit - len(hidden)] + hidden
    return Retrieval(passages=passages, filter_used=name, widened=len(hidden))


def _rankings(
    request: RetrieveInput,
    retriever: Retriever,
    filters: list[SearchFilter],
    limit: int,
    min_score: float | None,
) -> list[list[Passage]]:
    """Per filter, the question's and its translation's rankings under it fused, all searched
    in one round trip; passages under `min_score` do not count."""
    groups = [_queries(request, search_filter) for search_filter in filters]
    rankings = search_each(retriever, [query for group in groups for query in group], limit)
    if min_score is not None:
        rankings = [[p for p in ranking if p.score >= min_score] for ranking in rankings]
    fused: list[list[Passage]] = []
    for group in groups:
        fused.append(fuse(rankings[: len(group)], limit))
        rankings = rankings[len(group) :]
    return fused


def _queries(request: RetrieveInput, search_filter: SearchFilter) -> list[Query]:
    """The question under the filter, and its translation, if any, without the language."""
    queries: list[Query] = [(request.question, search_filter)]
    translation = (request.search_query or "").strip()
    if translation and translation.casefold() != request.question.strip().casefold():
        queries.append((translation, search_filter.model_copy(update={"language": None})))
    return queries
