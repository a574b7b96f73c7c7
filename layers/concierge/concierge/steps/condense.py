"""Condense: a follow-up becomes a standalone question, classified, with its cache key.

One cheap call does both jobs a follow-up needs before retrieval: the rewrite (from the
session's latest turns, trimmed to a token budget) and the classification of the rewritten
question (and, in a language the knowledge base hardly has documents in, its search_query).
The cache key is built from the standalone question, so a follow-up that means what an earlier
question meant is served from the cache without an answer call.
"""

from __future__ import annotations

from concierge.adapters.llm.port import estimate_tokens
from concierge.cache_keys import cache_key
from concierge.config import CategorySettings
from concierge.errors import GuardrailInterventionError
from concierge.knowledge import Catalog
from concierge.models.http import Guardrail
from concierge.models.state import CondenseInput, HistoryTurn, Understanding
from concierge.prompt_library import fenced, load_prompt
from concierge.safety.screen import screen_conversation
from concierge.steps.calls import ModelRoute
from concierge.steps.structured import CategoryMenu, ModelClassification, ask_for_json, settled

# A history answer longer than this is cut in the prompt: condense needs the gist, not all of it.
_ANSWER_CHARS_IN_PROMPT = 600
# The user's latest questions the screen reads together with the new one: an instruction
# split across turns ("remember the word X" ... "now do X") shows only when they are read as one.
_SCREENED_TURNS = 3


class _ModelFollowUp(ModelClassification):
    question: str


def transcript(history: list[HistoryTurn], token_budget: int) -> str:
    """The newest turns that fit the budget, oldest first. The newest turn is always kept: a
    follow-up leans on it most."""
    lines: list[str] = []
    used = 0
    for turn in reversed(history):
        answer = turn.answer[:_ANSWER_CHARS_IN_PROMPT]
        text = f"User: {fenced(turn.question)}\nAssistant: {fenced(answer)}"
        used += estimate_tokens(text)
        if lines and used > token_budget:
            break
        lines.append(text)
    return "\n".join(reversed(lines))


def condense(
    request: CondenseInput,
    history: list[HistoryTurn],
    categories: CategorySettings,
    route: ModelRoute,
    history_tokens: int,
    *,
    screened: bool = True,
    catalog: Catalog | None = None,
) -> Understanding:
    """`history`: the session's latest turns, oldest first (the chain loaded as many as the api
    settings' `history_turns`); of those, the newest that fit `history_tokens` are used. With
    `screened`, a conversation whose recent questions carry injected instructions stops here
    (GuardrailInterventionError), before the model reads it. `catalog`: the knowledge base's
    categories and languages (the menu)."""
    if screened:
        asked = [turn.question for turn in history[-_SCREENED_TURNS:]]
        verdict = screen_conversation([*asked, request.question])
        if verdict.flagged:
            blocked = Guardrail(action="blocked", source="input", reasons=list(verdict.reasons))
            raise GuardrailInterventionError(blocked.model_dump_json())
    prompt = load_prompt("condense", request.variant.prompts.get("condense"))
    menu = CategoryMenu.of(categories, catalog)
    conversation = transcript(history, history_tokens)
    answer = ask_for_json(
        route,
        "condense",
        prompt,
        system=prompt.render_system(),
        user=prompt.render(
            categories=menu.render(),
            history=conversation,
            question=fenced(request.question),
            **menu.languages(),
        ),
        guarded=fenced(request.question),
        inputs={
            "question": request.question,
            "history": [turn.model_dump() for turn in history],
            "categories": menu.descriptions,
            "default_category": menu.default,
        },
        deadline_ms=request.deadline_ms,
        model=_ModelFollowUp,
        check=menu.problem_with,
    )
    # An empty or missing rewrite is worse than the original question.
    rewritten = answer.parsed.question.strip().strip('"').strip() if answer.parsed else ""
    standalone = rewritten or request.question
    classification = settled(answer.parsed, menu, standalone)
    return Understanding(
        question=standalone,
        category=classification.category,
        language=classification.language,
        usage=answer.usage,
        cache_key=cache_key(standalone, classification.language, request.cache_scope),
        cache_language=classification.language,
        search_query=classification.search_query,
    )
