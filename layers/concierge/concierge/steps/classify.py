"""Classify: category (from the knowledge base's categories) and language of a first-turn
question, and its search_query when the knowledge base hardly has documents in its language.

With a local classifier (concierge.steps.cascade), a question whose category the knowledge base
itself makes clear is decided without a model call. Otherwise the model's reply is validated; an
unusable one is re-asked once, and whatever is still wrong after that falls back field by field
(default category, detected language, no search_query). Never a failure.
"""

from __future__ import annotations

from concierge.config import CategorySettings
from concierge.knowledge import Catalog
from concierge.models.state import Classification, ClassifyInput, StepUsage
from concierge.prompt_library import fenced, load_prompt
from concierge.steps.calls import ModelRoute
from concierge.steps.cascade import LOCAL_MODEL, LocalClassifier
from concierge.steps.structured import CategoryMenu, ModelClassification, ask_for_json, settled


def classify(
    request: ClassifyInput,
    categories: CategorySettings,
    route: ModelRoute,
    *,
    catalog: Catalog | None = None,
    local: LocalClassifier | None = None,
) -> Classification:
    """`catalog`: the knowledge base's categories and languages (the menu); `local`: the
    cascade's first stage, None to always ask the model."""
    menu = CategoryMenu.of(categories, catalog)
    if local is not None:
        decided = local.decide(request.question, menu)
        if decided is not None:
            return Classification(
                category=decided.category,
                language=decided.language,
                usage=StepUsage(step="classify", model=LOCAL_MODEL),
            )
    prompt = load_prompt("classify", request.variant.prompts.get("classify"))
    answer = ask_for_json(
        route,
        "classify",
        prompt,
        system=prompt.render_system(),
        user=prompt.render(
            categories=menu.render(), question=fenced(request.question), **menu.languages()
        ),
        guarded=fenced(request.question),
        inputs={
            "question": request.question,
            "categories": menu.descriptions,
            "default_category": menu.default,
        },
        deadline_ms=request.deadline_ms,
        model=ModelClassification,
        check=menu.problem_with,
    )
    return Classification(
        **settled(answer.parsed, menu, request.question).model_dump(), usage=answer.usage
    )
