"""The categories classify and condense offer come from the knowledge base; CONCIERGE_CATEGORIES
only restricts and orders them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from concierge import wiring
from concierge.config import CategorySettings
from concierge.errors import ConfigurationError
from concierge.knowledge import Catalog, CategoryInfo, IndexFile
from concierge.models.state import ClassifyInput, CondenseInput
from concierge.steps.classify import classify
from concierge.steps.condense import condense
from concierge.steps.structured import CategoryMenu
from fakes import ScriptedModel, route_of

CATALOG = Catalog(
    categories={
        "cli": CategoryInfo(description="Commands and flags", source="category-file", documents=9),
        "errors": CategoryInfo(description="Documents: E101", source="titles", documents=4),
    },
    languages={"en": 40, "de": 3},
)


def _deadline() -> int:
    return int((time.time() + 10) * 1000)


def test_the_menu_is_the_knowledge_bases_categories_and_the_default() -> None:
    # When the menu is built without an override
    menu = CategoryMenu.of(CategorySettings(), CATALOG)

    # Then it offers the knowledge base's categories, described, and the default category
    assert menu.descriptions == {
        "cli": "Commands and flags",
        "errors": "Documents: E101",
        "general": "anything that fits none of the other categories",
    }
    assert menu.render().splitlines()[0] == "- cli: Commands and flags"


def test_categories_setting_restricts_and_orders_the_menu() -> None:
    # Given an override naming one category of the knowledge base, and one it does not have
    settings = CategorySettings(categories=("errors", "billing"), default_category="other")

    # When the menu is built
    menu = CategoryMenu.of(settings, CATALOG)

    # Then it offers those, in that order, with the default; an unknown one only by name
    assert menu.names == ("errors", "billing", "other")
    assert menu.render().splitlines()[1] == "- billing"


def test_no_categories_anywhere_is_a_configuration_error() -> None:
    # Given no catalog (an index of the old format) and no override
    # When the menu is built
    # Then it refuses, saying what to do
    with pytest.raises(ConfigurationError, match="ingest again"):
        CategoryMenu.of(CategorySettings(), Catalog(languages={"en": 3}))


def test_classify_offers_the_knowledge_bases_descriptions_to_the_model() -> None:
    # Given a model that picks a category
    model = ScriptedModel(['{"category": "cli", "language": "en"}'])

    # When a question is classified with the knowledge base's catalog
    result = classify(
        ClassifyInput(request_id="r", question="How do I run it?", deadline_ms=_deadline()),
        CategorySettings(),
        route_of(model),
        catalog=CATALOG,
    )

    # Then the prompt listed the knowledge base's categories with their descriptions
    assert "- cli: Commands and flags" in model.requests[0].prompt
    assert "- errors: Documents: E101" in model.requests[0].prompt
    assert result.category == "cli"


def test_condense_offers_the_same_menu() -> None:
    # Given a model that rewrites and classifies a follow-up
    model = ScriptedModel(['{"question": "Which flags?", "category": "cli", "language": "en"}'])
    request = CondenseInput(
        request_id="r",
        question="Which flags?",
        deadline_ms=_deadline(),
        history_items=[],
        cache_scope="scope",
    )

    # When it is condensed with the knowledge base's catalog
    result = condense(request, [], CategorySettings(), route_of(model), 500, catalog=CATALOG)

    # Then the prompt listed the knowledge base's categories, and the category is taken
    assert "- errors: Documents: E101" in model.requests[0].prompt
    assert result.category == "cli"


def test_the_composition_root_reads_the_menu_from_the_local_index(
    monkeypatch: pytest.MonkeyPatch, sample_index: tuple[Path, IndexFile]
) -> None:
    # Given the settings of a function over the sample index, without CONCIERGE_CATEGORIES
    monkeypatch.setenv("CONCIERGE_INDEX_URI", str(sample_index[0]))
    wiring.reset()

    # When the catalog is read
    catalog = wiring.catalog()
    wiring.reset()

    # Then it is the index's: its categories, described, and its languages
    assert catalog is not None
    assert list(catalog.categories) == ["products", "pricing", "policies", "support", "company"]
    assert catalog.languages == {"en": 98, "es": 43, "de": 18}


def test_the_composition_root_reads_a_catalog_object_when_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a Bedrock knowledge base's settings and its categories.json
    path = tmp_path / "categories.json"
    path.write_text(CATALOG.model_dump_json(), encoding="utf-8")
    monkeypatch.setenv("CONCIERGE_RETRIEVER", "bedrock-kb")
    monkeypatch.setenv("CONCIERGE_CATALOG_URI", str(path))
    wiring.reset()

    # When the catalog is read
    catalog = wiring.catalog()
    wiring.reset()

    # Then it is that object's
    assert catalog == CATALOG
