"""Classify: category (from the configured list) and language of the question.

The model's reply is validated; an unusable one is re-asked once, and whatever is still wrong
after that falls back field by field (default category, detected language). Never a failure.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ValidationError, field_validator

from concierge.config import ClassifySettings
from concierge.models.state import Classification, ClassifyInput
from concierge.prompt_library import load_prompt
from concierge.steps.calls import ModelRoute, call_model
from concierge.text import detect_language

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")
_NONE_OF_THESE = "anything that fits none of the other categories"


class _ModelClassification(BaseModel):
    """What the model is asked to return; validated before it enters the state."""

    category: str
    language: str
    translated_question: str | None = None

    @field_validator("category", "language")
    @classmethod
    def _clean(cls, value: str) -> str:
        return value.strip().lower()


def classify(
    request: ClassifyInput, settings: ClassifySettings, route: ModelRoute
) -> Classification:
    prompt = load_prompt("classify")
    # The default category is a valid answer too: "none of these" is something a model may say.
    allowed = tuple(dict.fromkeys((*settings.categories, settings.default_category)))
    categories = {name: prompt.categories.get(name, _NONE_OF_THESE) for name in allowed}
    rendered = prompt.render(
        categories="\n".join(f"- {name}: {text}" for name, text in categories.items()),
        question=request.question,
    )
    inputs = {
        "question": request.question,
        "categories": categories,
        "default_category": settings.default_category,
    }
    system = prompt.render_system()
    reply, usage = call_model(
        route,
        "classify",
        prompt,
        system=system,
        user=rendered,
        inputs=inputs,
        deadline_ms=request.deadline_ms,
    )
    parsed, problem = _parse(reply.text, allowed)
    if problem:
        repaired_reply, repair_usage = call_model(
            route,
            "classify",
            prompt,
            system=system,
            user=prompt.render_repair(rendered, problem),
            inputs=inputs,
            deadline_ms=request.deadline_ms,
        )
        usage = usage.plus(repair_usage).model_copy(update={"repairs": 1})
        parsed, problem = _parse(repaired_reply.text, allowed)
    category = settings.default_category
    language = detect_language(request.question)
    translated = None
    if parsed is not None:
        if parsed.category in allowed:
            category = parsed.category
        if _LANGUAGE_CODE.fullmatch(parsed.language):
            language = parsed.language
        translated = parsed.translated_question or None
    return Classification(
        category=category,
        language=language,
        translated_question=translated,
        usage=usage.model_copy(update={"defaulted": bool(problem)}),
    )


def _parse(text: str, categories: tuple[str, ...]) -> tuple[_ModelClassification | None, str]:
    """The reply, and what is wrong with it ("" when nothing is)."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None, "it contained no JSON object"
    try:
        parsed = _ModelClassification.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError:
        return None, "it was not valid JSON"
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        return None, f"these fields were missing or not strings: {fields}"
    if parsed.category not in categories:
        return parsed, f"category must be one of {', '.join(categories)}"
    if not _LANGUAGE_CODE.fullmatch(parsed.language):
        return parsed, "language must be a two-letter ISO 639-1 code"
    return parsed, ""
