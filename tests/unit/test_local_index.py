from pathlib import Path
from unittest import mock

import pytest

from concierge.adapters.retrieval.local_index import LocalIndex, load_index, write_index
from concierge.adapters.retrieval.port import SearchFilter
from concierge.errors import IndexNotFoundError
from concierge.ingest import build_index, parse_document
from concierge.knowledge import Chunk, IndexFile

CHUNKS = [
    Chunk(
        source="tents.md",
        title="Tents",
        text="The Cirrus tent sleeps two.",
        category="products",
        language="en",
    ),
    Chunk(
        source="prices.md",
        title="Prices",
        text="The cheapest tent costs 349 EUR.",
        category="pricing",
        language="en",
    ),
    Chunk(
        source="precios.md",
        title="Precios",
        text="La tienda más barata cuesta 349 EUR.",
        category="pricing",
        language="es",
    ),
]


def test_search_ranks_by_relevance() -> None:
    hits = LocalIndex(IndexFile(kb_version="1", chunks=CHUNKS)).search(
        "cheapest tent", SearchFilter(), 3
    )
    assert hits[0].source == "prices.md"


def test_filters_restrict_the_candidates() -> None:
    index = LocalIndex(IndexFile(kb_version="1", chunks=CHUNKS))
    hits = index.search("349 EUR", SearchFilter(language="es"), 3)
    assert [h.source for h in hits] == ["precios.md"]
    assert index.search("tent", SearchFilter(category="company"), 3) == []


def test_a_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="concierge index"):
        load_index(str(tmp_path / "none.json"))


def test_an_index_round_trips_through_its_file(tmp_path: Path) -> None:
    write_index(IndexFile(kb_version="7", chunks=CHUNKS), tmp_path / "index.json")
    assert load_index(str(tmp_path / "index.json")).kb_version == "7"


def test_a_failed_write_leaves_the_previous_index_intact(tmp_path: Path) -> None:
    target = tmp_path / "index.json"
    write_index(IndexFile(kb_version="old", chunks=CHUNKS), target)
    with mock.patch("json.dump", side_effect=OSError("disk full")), pytest.raises(OSError):
        write_index(IndexFile(kb_version="new", chunks=CHUNKS), target)
    assert load_index(str(target)).kb_version == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_front_matter_and_sections_become_chunks(tmp_path: Path) -> None:
    document = tmp_path / "doc.md"
    document.write_text(
        "---\ntitle: Returns\ncategory: policies\nlanguage: en\n---\n# Returns\nIntro.\n## Window\n30 days.\n## Refunds\n14 days.\n",
        encoding="utf-8",
    )
    chunks = parse_document(document, "general")
    assert [c.text.splitlines()[0] for c in chunks] == ["# Returns", "## Window", "## Refunds"]
    assert {(c.title, c.category, c.language) for c in chunks} == {("Returns", "policies", "en")}


def test_missing_metadata_is_detected_or_defaulted(tmp_path: Path) -> None:
    document = tmp_path / "nota.md"
    document.write_text(
        "# Envíos\nLos pedidos se envían en dos días y el envío es gratis.", encoding="utf-8"
    )
    (chunk,) = parse_document(document, "general")
    assert (chunk.title, chunk.category, chunk.language) == ("Envíos", "general", "es")


def test_the_knowledge_base_version_changes_with_the_content(tmp_path: Path) -> None:
    document = tmp_path / "a.md"
    document.write_text("# A\nOne.", encoding="utf-8")
    first = build_index([tmp_path]).kb_version
    document.write_text("# A\nTwo.", encoding="utf-8")
    assert build_index([tmp_path]).kb_version != first
