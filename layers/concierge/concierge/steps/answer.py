"""Answer: the strong model writes the answer from the passages, citing the ones it used."""

from __future__ import annotations

import re

from concierge.models.http import Citation
from concierge.models.state import AnswerInput, AnswerOutput, Passage, StepUsage
from concierge.prompt_library import load_prompt
from concierge.steps.calls import ModelRoute, call_model

NO_ANSWER = "NO_ANSWER"
_MARKER = re.compile(r"\[(\d{1,2})\]")
_MARKER_WITH_SPACE = re.compile(r"(\s?)\[(\d{1,2})\]")
_REPEATED_MARKER = re.compile(r"(\[\d+\])(?:\s*\1)+")
_SNIPPET_CHARS = 240


def answer(request: AnswerInput, route: ModelRoute) -> AnswerOutput:
    prompt = load_prompt("answer")
    if not request.passages:
        # Nothing to ground an answer in: say so without paying for a model call.
        return _no_answer(
            request.language, prompt.no_answer, StepUsage(step="answer", model=route.spec)
        )
    numbered = "\n\n".join(
        f"[{number}] {passage.title}\n{passage.text}"
        for number, passage in enumerate(request.passages, start=1)
    )
    reply, usage = call_model(
        route,
        "answer",
        prompt,
        system=prompt.render_system(language=request.language),
        user=prompt.render(passages=numbered, question=request.question),
        inputs={
            "question": request.question,
            "language": request.language,
            "passages": [p.model_dump() for p in request.passages],
        },
        deadline_ms=request.deadline_ms,
    )
    text = reply.text.strip()
    if reply.refused:
        # A guardrail's message is shown as it is, and never cached.
        return AnswerOutput(answer=text, citations=[], cacheable=False, usage=usage)
    if not text or text.startswith(NO_ANSWER):
        return _no_answer(request.language, prompt.no_answer, usage)
    text, citations = cite(text, request.passages)
    return AnswerOutput(answer=text, citations=citations, cacheable=True, usage=usage)


def cite(text: str, passages: list[Passage]) -> tuple[str, list[Citation]]:
    """The citations of the passages the answer points at with [n], once per document, in order
    of first mention — and the answer with its markers renumbered to match that list.
    Markers that point at no passage are dropped rather than shown dangling."""
    citations: list[Citation] = []
    position_of_document: dict[str, int] = {}
    renumbered: dict[int, int] = {}
    for number in (int(n) for n in _MARKER.findall(text)):
        if number in renumbered or not 1 <= number <= len(passages):
            continue
        passage = passages[number - 1]
        if passage.source not in position_of_document:
            citations.append(
                Citation(source=passage.source, title=passage.title, snippet=_snippet(passage.text))
            )
            position_of_document[passage.source] = len(citations)
        renumbered[number] = position_of_document[passage.source]

    def _renumber(match: re.Match[str]) -> str:
        number = renumbered.get(int(match.group(2)))
        return f"{match.group(1)}[{number}]" if number else ""

    text = _MARKER_WITH_SPACE.sub(_renumber, text)
    # Two passages of one document cited side by side become one marker.
    text = _REPEATED_MARKER.sub(r"\1", text)
    if not citations and passages:
        # A grounded answer without markers still came from the passages it was given.
        top = passages[0]
        citations.append(Citation(source=top.source, title=top.title, snippet=_snippet(top.text)))
    return text.strip(), citations


def _snippet(text: str) -> str:
    flat = " ".join(line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1].rstrip() + "…"


def _no_answer(language: str, messages: dict[str, str], usage: StepUsage) -> AnswerOutput:
    message = messages.get(language) or messages["en"]
    return AnswerOutput(answer=message, citations=[], cacheable=False, usage=usage)
