"""Classify: category (from the configured list) and language of the question."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ValidationError, field_validator

from concierge.adapters.llm.port import ChatModel
from concierge.config import ClassifySettings
from concierge.models.state import Classification, ClassifyInput
from concierge.prompt_library import load_prompt
from concierge.steps.calls import call_model
from concierge.text import detect_language

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


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
    request: ClassifyInput, settings: ClassifySettings, model: ChatModel
) -> Classification:
    prompt = load_prompt("classify")
    categories = {name: prompt.categories.get(name, name) for name in settings.categories}
    reply, usage = call_model(
        model,
        "classify",
        prompt,
        inputs={
            "question": request.question,
            "categories": categories,
            "default_category": settings.default_category,
        },
        deadline_ms=request.deadline_ms,
        prompt_values={
            "categories": "\n".join(f"- {name}: {text}" for name, text in categories.items()),
            "question": request.question,
        },
    )
    parsed = _parse(reply.text)
    # Invalid or partial output never fails the request: fall back field by field.
    category = settings.default_category
    language = detect_language(request.question)
    translated = None
    if parsed is not None:
        if parsed.category in settings.categories:
            category = parsed.category
        if re.fullmatch(r"[a-z]{2}", parsed.language):
            language = parsed.language
        translated = parsed.translated_question or None
    return Classification(
        category=category, language=language, translated_question=translated, usage=usage
    )


def _parse(text: str) -> _ModelClassification | None:
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None
    try:
        return _ModelClassification.model_validate(json.loads(match.group(0)))
    except (json.JSONDecodeError, ValidationError):
        return None
