"""Structured model output: ask for one JSON object, validate it, re-ask once when unusable.

Shared by classify (first turns) and condense (follow-ups, which classify too). What is still
wrong after the re-ask is the caller's to default field by field: never a failed request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError, field_validator

from concierge.adapters.llm.port import ModelReply, Task
from concierge.config import CategorySettings
from concierge.errors import ConfigurationError, GuardrailInterventionError
from concierge.knowledge import Catalog
from concierge.models.state import StepUsage
from concierge.observability import logger
from concierge.prompt_library import Prompt
from concierge.steps.calls import ROUTE_FAILURES, ModelRoute, call_model
from concierge.text import detect_language

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
LANGUAGE_CODE = re.compile(r"[a-z]{2}")
_NONE_OF_THESE = "anything that fits none of the other categories"
# A translation of a question is about as long as the question: a longer "search_query" is not
# one, and would only be searched for nothing.
_MAX_SEARCH_QUERY_CHARS = 500

M = TypeVar("M", bound=BaseModel)


class ModelClassification(BaseModel):
    """The classification fields a model is asked to return."""

    category: str
    language: str
    # The question in the knowledge base's main language, or None (see CategoryMenu.covers).
    search_query: str | None = None

    @field_validator("category", "language")
    @classmethod
    def _clean(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("search_query", mode="before")
    @classmethod
    def _query(cls, value: Any) -> str | None:
        # An unusable translation is dropped, not re-asked: the category and language it came
        # with are still good, and retrieval does without it.
        if not isinstance(value, str):
            return None
        text = " ".join(value.split())
        if not text or text.lower() in ("null", "none") or len(text) > _MAX_SEARCH_QUERY_CHARS:
            return None
        return text


@dataclass(frozen=True)
class CategoryMenu:
    """The categories offered to the model, with the descriptions it chooses by, and the
    knowledge base's languages (whether a question needs a translation to be searched)."""

    descriptions: dict[str, str]
    default: str
    catalog: Catalog = field(default_factory=Catalog)

    @classmethod
    def of(cls, settings: CategorySettings, catalog: Catalog | None = None) -> CategoryMenu:
        """The knowledge base's categories (all, or those `settings.categories` names, in its
        order), and the default category. Raises ConfigurationError when there are none to
        offer: every question would be routed to the default."""
        catalog = catalog or Catalog()
        known = catalog.categories
        chosen = settings.categories or tuple(known)
        if not chosen:
            raise ConfigurationError(
                "no categories: the knowledge base records none (an index written before "
                "`concierge ingest` recorded them: ingest again; a Bedrock knowledge base: set "
                "CONCIERGE_CATALOG_URI to the categories.json ingestion wrote beside it), and "
                "CONCIERGE_CATEGORIES names none"
            )
        # The default category is a valid answer too: "none of these" is something a model says.
        names = dict.fromkeys((*chosen, settings.default_category))
        descriptions = {
            name: known[name].description
            if name in known
            else (_NONE_OF_THESE if name == settings.default_category else "")
            for name in names
        }
        return cls(descriptions, settings.default_category, catalog)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.descriptions)

    def render(self) -> str:
        return "\n".join(
            f"- {name}: {text}" if text else f"- {name}" for name, text in self.descriptions.items()
        )

    def covers(self, language: str) -> bool:
        """Whether a question in `language` is searched well enough as it is; True when the
        knowledge base's languages are unknown (nothing says a translation would help)."""
        return not self.catalog.languages or self.catalog.covers(language)

    def languages(self) -> dict[str, str]:
        """The prompt's view of the knowledge base's languages: `main_language` and
        `covered_languages` (a search_query is asked for a question in none of these)."""
        main = self.catalog.main_language
        if main is None:
            return {"main_language": "unknown", "covered_languages": "unknown"}
        return {
            "main_language": main,
            "covered_languages": ", ".join(self.catalog.covered_languages()),
        }

    def problem_with(self, parsed: ModelClassification) -> str:
        if parsed.category not in self.descriptions:
            return f"category must be one of {', '.join(self.names)}"
        if not LANGUAGE_CODE.fullmatch(parsed.language):
            return "language must be a two-letter ISO 639-1 code"
        return ""


def settled(
    parsed: ModelClassification | None, menu: CategoryMenu, question: str
) -> ModelClassification:
    """The model's classification where it is valid, a safe default field by field elsewhere.
    A search_query is kept only for a question in a language the knowledge base does not
    cover, and only when it differs from the question."""
    category, language, search_query = menu.default, detect_language(question), None
    if parsed is not None:
        if parsed.category in menu.descriptions:
            category = parsed.category
        if LANGUAGE_CODE.fullmatch(parsed.language):
            language = parsed.language
        translated = parsed.search_query
        if translated and not menu.covers(language) and translated.lower() != question.lower():
            search_query = translated
    return ModelClassification(category=category, language=language, search_query=search_query)


@dataclass(frozen=True)
class Structured(Generic[M]):
    parsed: M | None
    # What was still wrong after the re-ask ("" when nothing).
    problem: str
    usage: StepUsage


def ask_for_json(
    route: ModelRoute,
    task: Task,
    prompt: Prompt,
    *,
    system: str,
    user: str,
    inputs: dict[str, Any],
    deadline_ms: int,
    model: type[M],
    check: Callable[[M], str],
    guarded: str = "",
) -> Structured[M]:
    """Call the route, parse its reply into `model`, and re-ask once if it is unusable. When
    every model of the route fails, nothing is parsed and the caller's defaults stand: a side
    step must not fail the request (a guardrail's block and a spent budget still stop it)."""
    try:
        reply, usage = call_model(
            route,
            task,
            prompt,
            system=system,
            user=user,
            inputs=inputs,
            deadline_ms=deadline_ms,
            guarded=guarded,
        )
    except ROUTE_FAILURES as error:
        # Its name only: an error's message may quote what the model was sent.
        logger.warning(
            "model route failed: the step goes on with its defaults",
            extra={"step": task, "error": type(error).__name__},
        )
        failed = StepUsage(step=task, model=route.spec, defaulted=True, failed=True)
        return Structured(None, f"the model route failed ({type(error).__name__})", failed)
    _stop_if_refused(reply)
    parsed, problem = parse_json(reply.text, model, check)
    if problem:
        try:
            repaired, repair_usage = call_model(
                route,
                task,
                prompt,
                system=system,
                user=prompt.render_repair(user, problem),
                inputs=inputs,
                deadline_ms=deadline_ms,
                guarded=guarded,
            )
        except ROUTE_FAILURES:
            # The first reply was unusable and the re-ask failed: defaults, as for a bad reply.
            return Structured(None, problem, usage.model_copy(update={"defaulted": True}))
        usage = usage.plus(repair_usage).model_copy(update={"repairs": 1})
        _stop_if_refused(repaired)
        parsed, problem = parse_json(repaired.text, model, check)
    return Structured(parsed, problem, usage.model_copy(update={"defaulted": bool(problem)}))


def _stop_if_refused(reply: ModelReply) -> None:
    """A guardrail that blocked the question here would block the answer too: the chain stops,
    and the api function answers with a refusal (defaulting the classification instead would
    send the blocked question on to the answer model)."""
    if reply.guardrail is not None and reply.refused:
        raise GuardrailInterventionError(reply.guardrail.model_dump_json())


def parse_json(text: str, model: type[M], check: Callable[[M], str]) -> tuple[M | None, str]:
    """The reply as `model`, and what is wrong with it ("" when nothing is)."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None, "it contained no JSON object"
    try:
        parsed = model.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError:
        return None, "it was not valid JSON"
    except ValidationError as exc:
        fields = ", ".join(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        return None, f"these fields were missing or not strings: {fields}"
    return parsed, check(parsed)
