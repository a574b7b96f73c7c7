"""Condense: rewrite a follow-up as a standalone question, from the session's latest turns."""

from __future__ import annotations

from typing import Any

from concierge.config import CondenseSettings
from concierge.models.state import Condensed, CondenseInput, HistoryTurn, StepUsage
from concierge.prompt_library import load_prompt
from concierge.steps.calls import ModelRoute, call_model

# A history answer longer than this is cut in the prompt: condense needs the gist, not all of it.
_ANSWER_CHARS_IN_PROMPT = 600


def history_from_items(items: list[dict[str, Any]], limit: int) -> list[HistoryTurn]:
    """DynamoDB items (newest first, as the Query task returns them) to turns, oldest first."""
    turns = [
        HistoryTurn(question=item["question"]["S"], answer=item["answer"]["S"])
        for item in items[:limit]
        if "question" in item and "answer" in item
    ]
    return list(reversed(turns))


def condense(request: CondenseInput, settings: CondenseSettings, route: ModelRoute) -> Condensed:
    history = history_from_items(request.history_items, settings.history_turns)
    if not history:
        return Condensed(
            question=request.question, usage=StepUsage(step="condense", model=route.spec)
        )
    transcript = "\n".join(
        f"User: {turn.question}\nAssistant: {turn.answer[:_ANSWER_CHARS_IN_PROMPT]}"
        for turn in history
    )
    prompt = load_prompt("condense")
    reply, usage = call_model(
        route,
        "condense",
        prompt,
        system=prompt.render_system(),
        user=prompt.render(history=transcript, question=request.question),
        inputs={"question": request.question, "history": [t.model_dump() for t in history]},
        deadline_ms=request.deadline_ms,
    )
    standalone = reply.text.strip().strip('"').strip()
    # An empty rewrite is worse than the original question.
    return Condensed(question=standalone or request.question, usage=usage)
