"""Answer: the strong model writes the answer from the passages, citing the ones it used; the
answer is checked before anyone sees it.

Checks, in order: a guardrail's intervention (a blocked answer becomes the refusal), the
language (one re-ask when the answer is clearly in another language, then the no-answer
message), links and images to hosts outside the allow-list (removed), the length (cut at a
sentence), the citations (only the passages the answer marks, in their retrieval order;
markers that point at none are dropped, none is invented). An answer that needed any repair,
that a guardrail touched, that was written by a fallback model, or that rests on passages the
screen left out is not cached.
"""

from __future__ import annotations

import re

from concierge.adapters.llm.port import ModelReply
from concierge.config import AnswerCheckSettings
from concierge.deadline import seconds_left
from concierge.errors import GuardrailInterventionError
from concierge.models.http import Citation, Guardrail
from concierge.models.state import AnswerInput, AnswerOutput, Passage, StepUsage
from concierge.prompt_library import Prompt, fenced, in_language, load_prompt
from concierge.safety.answer_checks import (
    within_length,
    without_foreign_links,
    written_in_another_language,
)
from concierge.safety.pii import redact
from concierge.steps.calls import ROUTE_FAILURES, ModelRoute, call_model
from concierge.text import snippet

NO_ANSWER = "NO_ANSWER"
_MARKER = re.compile(r"\[(\d{1,2})\]")
_MARKER_WITH_SPACE = re.compile(r"(\s?)\[(\d{1,2})\]")
_REPEATED_MARKER = re.compile(r"(\[\d+\])(?:\s*\1)+")
_SNIPPET_CHARS = 240
# A re-ask for the language is only worth starting with this much of the budget left.
_REPAIR_SECONDS = 4.0


def answer(
    request: AnswerInput,
    route: ModelRoute,
    checks: AnswerCheckSettings | None = None,
    *,
    redact_pii: bool = False,
) -> AnswerOutput:
    checks = checks or AnswerCheckSettings()
    prompt = load_prompt("answer", request.variant.prompts.get("answer"))
    if not request.passages:
        # Nothing to ground an answer in: say so without paying for a model call.
        usage = StepUsage(step="answer", model=route.spec)
        return _no_answer(request, prompt, usage, request.screened)
    documents = "\n".join(
        _document(number, passage) for number, passage in enumerate(request.passages, start=1)
    )
    user = prompt.render(passages=documents, question=fenced(request.question))
    system = prompt.render_system(language=request.language)
    reply, usage = _ask(route, prompt, request, system, user)
    if reply.refused and reply.guardrail is not None and reply.guardrail.source == "input":
        # The question itself was stopped: the chain ends as classify's or condense's would,
        # and nothing of it is stored (a follow-up must not be condensed from it).
        raise GuardrailInterventionError(reply.guardrail.model_dump_json())
    if reply.refused:
        return _refused(request, prompt, usage, reply.guardrail)
    text = reply.text.strip()
    repairs: tuple[str, ...] = ()
    if foreign := written_in_another_language(text, request.language):
        repairs = ("language",)
        if seconds_left(request.deadline_ms) > _REPAIR_SECONDS:
            try:
                repaired, repair_usage = _ask(
                    route, prompt, request, system, prompt.render_repair(user, request.language)
                )
            except ROUTE_FAILURES:
                # The re-ask could not be made: as for a re-ask still in the wrong language,
                # the user gets the no-answer reply in their language, not a failed request.
                repaired, repair_usage = None, None
            if repaired is not None and repair_usage is not None:
                usage = usage.plus(repair_usage).model_copy(update={"repairs": 1})
                if repaired.refused:
                    return _refused(request, prompt, usage, repaired.guardrail)
                text = repaired.text.strip()
                foreign = written_in_another_language(text, request.language)
        if foreign:
            language_failed = Guardrail(action="blocked", source="output", reasons=["language"])
            return _no_answer(request, prompt, usage, language_failed, problems=("language",))
    if not text or text.startswith(NO_ANSWER):
        return _no_answer(request, prompt, usage, request.screened)
    linked = without_foreign_links(text, checks.link_hosts)
    bounded = within_length(linked.text, checks.max_answer_chars)
    text, citations, cited = cite(bounded.text, request.passages)
    problems = (*repairs, *linked.problems, *bounded.problems, *cited)
    if usage.fallbacks:
        # The cache key names the primary answer model: a fallback's answer stored under it
        # would be served as the primary's until it expires.
        problems = (*problems, "fallback")
    guardrail = reply.guardrail or request.screened
    return AnswerOutput(
        answer=text,
        citations=citations,
        cacheable=not problems and guardrail is None,
        usage=usage,
        guardrail=guardrail,
        problems=list(problems),
        stored_answer=_stored(text, request.passages) if redact_pii else "",
    )


def _ask(
    route: ModelRoute, prompt: Prompt, request: AnswerInput, system: str, user: str
) -> tuple[ModelReply, StepUsage]:
    return call_model(
        route,
        "answer",
        prompt,
        system=system,
        user=user,
        inputs={
            "question": request.question,
            "language": request.language,
            "search_query": request.search_query,
            "passages": [p.model_dump() for p in request.passages],
        },
        deadline_ms=request.deadline_ms,
        guarded=fenced(request.question),
    )


def _document(number: int, passage: Passage) -> str:
    title = fenced(passage.title).replace('"', "'")
    return f'<document index="{number}" title="{title}">\n{fenced(passage.text)}\n</document>'


def cite(text: str, passages: list[Passage]) -> tuple[str, list[Citation], tuple[str, ...]]:
    """The citations of the passages the answer points at with [n], in order of relevance (the
    passages' retrieval rank, the order they were given in), once per document — and the answer
    with its markers renumbered to match that list, and what was wrong with its markers:
    `unknown_citation` (a marker that points at no passage, dropped) and `uncited` (no marker at
    all: the answer is shown without citations). A passage the answer does not mark is not
    cited, however well it ranked."""
    marked = {int(n) for n in _MARKER.findall(text)}
    unknown = any(not 1 <= number <= len(passages) for number in marked)
    citations: list[Citation] = []
    position_of_document: dict[str, int] = {}
    renumbered: dict[int, int] = {}
    for number in sorted(n for n in marked if 1 <= n <= len(passages)):
        passage = passages[number - 1]
        if passage.source not in position_of_document:
            # The document's best-ranked marked passage speaks for it.
            citations.append(
                Citation(
                    source=passage.source,
                    title=passage.title,
                    snippet=snippet(passage.text, _SNIPPET_CHARS),
                )
            )
            position_of_document[passage.source] = len(citations)
        renumbered[number] = position_of_document[passage.source]

    def _renumber(match: re.Match[str]) -> str:
        number = renumbered.get(int(match.group(2)))
        return f"{match.group(1)}[{number}]" if number else ""

    text = _MARKER_WITH_SPACE.sub(_renumber, text)
    # Two passages of one document cited side by side become one marker.
    text = _REPEATED_MARKER.sub(r"\1", text)
    problems = ("unknown_citation",) if unknown else ()
    if not citations:
        problems = (*problems, "uncited")
    return text.strip(), citations, problems


def _stored(text: str, passages: list[Passage]) -> str:
    """The answer as the history and the cache keep it: personal data masked, except what the
    documents themselves publish (a support address, a shop's phone number)."""
    published = [passage.text for passage in passages]
    return redact(text, keep_from=published).text


def _no_answer(
    request: AnswerInput,
    prompt: Prompt,
    usage: StepUsage,
    guardrail: Guardrail | None,
    problems: tuple[str, ...] = (),
) -> AnswerOutput:
    return AnswerOutput(
        answer=in_language(prompt.no_answer, request.language),
        citations=[],
        cacheable=False,
        usage=usage,
        guardrail=guardrail,
        problems=list(problems),
    )


def _refused(
    request: AnswerInput, prompt: Prompt, usage: StepUsage, guardrail: Guardrail | None
) -> AnswerOutput:
    # The guardrail's own message is in one language; the user gets ours, in theirs.
    return AnswerOutput(
        answer=in_language(prompt.refused, request.language),
        citations=[],
        cacheable=False,
        usage=usage,
        guardrail=guardrail,
        problems=["guardrail"],
    )
