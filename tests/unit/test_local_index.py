from pathlib import Path
from unittest import mock

import pytest

from concierge.adapters.retrieval.local_index import LocalIndex, load_index, write_index
from concierge.adapters.retrieval.port import SearchFilter
from concierge.errors import IndexNotFoundError
from concierge.knowledge import Chunk, IndexFile
from concierge_cli.ingestion import build_index, parse_document

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
    # Given an index of a tent, its price in English and its price in Spanish
    index = LocalIndex(IndexFile(kb_version="1", chunks=CHUNKS))

    # When it is searched for the cheapest tent, without a filter
    hits = index.search("cheapest tent", SearchFilter(), 3)

    # Then the English price comes first
    assert hits[0].source == "prices.md"


def test_filters_restrict_the_candidates() -> None:
    # Given an index with the same price in English and in Spanish
    index = LocalIndex(IndexFile(kb_version="1", chunks=CHUNKS))

    # When it is searched in Spanish only, and in a category it does not have
    spanish = index.search("349 EUR", SearchFilter(language="es"), 3)
    no_category = index.search("tent", SearchFilter(category="company"), 3)

    # Then only the Spanish chunk is found, and nothing in the missing category
    assert [h.source for h in spanish] == ["precios.md"]
    assert no_category == []


def test_a_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    # Given a path where no index has been written
    missing = tmp_path / "none.json"

    # When / Then loading it is an error that says to run `concierge ingest`
    with pytest.raises(IndexNotFoundError, match="concierge ingest"):
        load_index(str(missing))


def test_an_index_round_trips_through_its_file(tmp_path: Path) -> None:
    # Given an index written to a file
    written = IndexFile(kb_version="7", chunks=CHUNKS)
    write_index(written, tmp_path / "index.json")

    # When it is loaded again
    loaded = load_index(str(tmp_path / "index.json"))

    # Then it has the same version, the same chunks, and finds what the original finds
    assert loaded.kb_version == "7"
    assert len(loaded) == len(CHUNKS)
    in_memory = LocalIndex(written)
    for question in ("cheapest tent", "349 EUR", "Cirrus"):
        assert loaded.search(question, SearchFilter(), 3) == in_memory.search(
            question, SearchFilter(), 3
        )


def test_a_failed_write_leaves_the_previous_index_intact(tmp_path: Path) -> None:
    # Given an index already written
    target = tmp_path / "index.json"
    write_index(IndexFile(kb_version="old", chunks=CHUNKS), target)

    # When writing a new one over it fails for a full disk
    with mock.patch("json.dump", side_effect=OSError("disk full")), pytest.raises(OSError):
        write_index(IndexFile(kb_version="new", chunks=CHUNKS), target)

    # Then the old index is still there, and no temporary file is left
    assert load_index(str(target)).kb_version == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["index.json"]


def test_front_matter_and_sections_become_chunks(tmp_path: Path) -> None:
    # Given a document with front matter, a title and two sections
    document = tmp_path / "doc.md"
    document.write_text(
        "---\ntitle: Returns\ncategory: policies\nlanguage: en\n---\n# Returns\nIntro.\n## Window\n30 days.\n## Refunds\n14 days.\n",
        encoding="utf-8",
    )

    # When it is parsed
    chunks = parse_document(document, "general")

    # Then each heading starts a chunk, and every chunk carries the declared metadata
    assert [c.text.splitlines()[0] for c in chunks] == ["# Returns", "## Window", "## Refunds"]
    assert {(c.title, c.category, c.language) for c in chunks} == {("Returns", "policies", "en")}


def test_missing_metadata_is_detected_or_defaulted(tmp_path: Path) -> None:
    # Given a Spanish document without front matter
    document = tmp_path / "nota.md"
    document.write_text(
        "# Envíos\nLos pedidos se envían en dos días y el envío es gratis.", encoding="utf-8"
    )

    # When it is parsed
    (chunk,) = parse_document(document, "general")

    # Then the title is its heading, the category the default, and the language detected
    assert (chunk.title, chunk.category, chunk.language) == ("Envíos", "general", "es")


def test_the_knowledge_base_version_changes_with_the_content(tmp_path: Path) -> None:
    # Given a knowledge base of one document, indexed
    document = tmp_path / "a.md"
    document.write_text("# A\nOne.", encoding="utf-8")
    first = build_index([tmp_path]).kb_version

    # When the document changes and it is indexed again
    document.write_text("# A\nTwo.", encoding="utf-8")
    second = build_index([tmp_path]).kb_version

    # Then the version is a new one
    assert second != first


def _chunk(
    source: str, text: str, *, title: str = "", category: str = "policies", language: str = "en"
) -> Chunk:
    return Chunk(
        source=source, title=title or source, text=text, category=category, language=language
    )


def test_a_spanish_question_finds_the_forms_of_the_same_verb_and_noun() -> None:
    # Given a Spanish document that speaks of "devoluciones" and one that does not
    index = LocalIndex(
        IndexFile(
            kb_version="1",
            chunks=[
                _chunk("envios.md", "Los pedidos se envían en dos días.", language="es"),
                _chunk(
                    "devoluciones.md",
                    "Las devoluciones son gratuitas durante 30 días.",
                    language="es",
                ),
            ],
        )
    )

    # When the question uses the verb, conjugated, with a pronoun attached
    hits = index.search("¿Puedo devolverla?", SearchFilter(language="es"), 2)

    # Then the returns document is found
    assert [hit.source for hit in hits] == ["devoluciones.md"]


def test_a_german_compound_is_found_by_its_parts() -> None:
    # Given a German document about shipping, and one about express shipping as a compound
    index = LocalIndex(
        IndexFile(
            kb_version="1",
            chunks=[
                _chunk("versand.md", "Der Versand dauert zwei Werktage.", language="de"),
                _chunk("express.md", "Der Expressversand kostet 14,90 Euro.", language="de"),
            ],
        )
    )

    # When the question names only a part of the compound
    hits = index.search("Gibt es Express?", SearchFilter(language="de"), 2)

    # Then only the document with the compound is found
    assert [hit.source for hit in hits] == ["express.md"]


def test_a_category_filter_keeps_only_that_category_in_every_language() -> None:
    # Given chunks about tents in three categories, one of them in two languages
    chunks = [
        _chunk("a.md", "Tents and prices.", category="products"),
        _chunk("b.md", "Tent prices in euros.", category="pricing"),
        _chunk("c.md", "Precios de la tienda: tent Cirrus.", category="pricing", language="es"),
        _chunk("d.md", "Tent care.", category="support"),
    ]
    index = LocalIndex(IndexFile(kb_version="1", chunks=chunks))

    # When it is searched in one category, in that category in a missing language, and in an
    # unknown category
    pricing = index.search("tent", SearchFilter(category="pricing"), 10)
    pricing_in_german = index.search("tent", SearchFilter(category="pricing", language="de"), 10)
    unknown = index.search("tent", SearchFilter(category="unknown"), 10)

    # Then the category's chunks are found in every language, and nothing otherwise
    assert sorted(hit.source for hit in pricing) == ["b.md", "c.md"]
    assert pricing_in_german == []
    assert unknown == []


def test_names_match_across_languages_when_nothing_is_filtered() -> None:
    # Given English documents, one of them naming the Cirrus 2
    index = LocalIndex(
        IndexFile(
            kb_version="1",
            chunks=[
                _chunk("tents.md", "The Cirrus 2 weighs 1.65 kg.", category="products"),
                _chunk("warranty.md", "Tents have a 5-year warranty.", category="policies"),
            ],
        )
    )

    # When a Spanish question names it, without a filter
    hits = index.search("¿Cuánto pesa la Cirrus 2?", SearchFilter(), 2)

    # Then the document naming it comes first
    assert hits[0].source == "tents.md"


def test_a_heading_or_title_outweighs_a_passing_mention() -> None:
    # Given two chunks of the same length, one about refunds, one mentioning them in passing
    about = _chunk("refunds.md", "## Refunds\nWe pay back within 14 days.", title="Returns")
    passing = _chunk("shipping.md", "Parcels leave daily; refunds differ.", title="Shipping")
    index = LocalIndex(IndexFile(kb_version="1", chunks=[passing, about]))

    # When the question names the topic
    hits = index.search("refunds", SearchFilter(), 2)

    # Then the chunk whose heading names it comes first
    assert [hit.source for hit in hits] == ["refunds.md", "shipping.md"]


def test_results_are_ordered_by_score_then_by_file_order_and_keep_their_fields() -> None:
    # Given two identical chunks after a less relevant one
    twins = [_chunk(f"{name}.md", "The Pika stove costs 39 EUR.", title="Prices") for name in "ab"]
    extra = _chunk("other.md", "The Kestrel stove burns petrol.", category="products")
    index = LocalIndex(IndexFile(kb_version="1", chunks=[extra, *twins]))

    # When the two best are asked for
    hits = index.search("Pika stove price", SearchFilter(), 2)

    # Then they are the twins, equal in score, in file order, with every field of the chunk
    assert [hit.source for hit in hits] == ["a.md", "b.md"]
    assert hits[0].score == hits[1].score > 0
    assert (hits[0].title, hits[0].text, hits[0].category, hits[0].language) == (
        "Prices",
        "The Pika stove costs 39 EUR.",
        "policies",
        "en",
    )
