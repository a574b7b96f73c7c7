"""Metadata per chunk: declared by the document, else given, else inferred."""

from __future__ import annotations

from pathlib import Path

from concierge_cli.ingestion import IngestOptions, ingest
from concierge_cli.ingestion.metadata import resolve, split_front_matter

SPANISH = "Los pedidos se envían en dos días y el envío es gratis para los socios."


def _resolve(declared: dict[str, str], **given: str | None) -> tuple[str, str, str]:
    options: dict[str, str | None] = {"folder": None, "category": None, **given}
    meta = resolve(
        declared,
        "# Envíos\n" + SPANISH,
        file_stem="envios",
        folder=options["folder"],
        category=options["category"],
        default_category="general",
    )
    return meta.title, meta.category, meta.language


def test_front_matter_wins_over_everything() -> None:
    # Given a document that declares its title, category and language
    declared = {"title": "Shipping", "category": "Logistics", "language": "EN"}

    # When its metadata is resolved with a folder and a category option as well
    resolved = _resolve(declared, folder="faq", category="misc")

    # Then the declared values are used, normalised
    assert resolved == ("Shipping", "logistics", "en")


def test_category_falls_back_to_the_option_then_the_folder_then_the_default() -> None:
    # Given a document that declares no category
    # When its category is resolved with an option and a folder, with a folder only, and with
    # neither
    with_option = _resolve({}, folder="Shipping Info", category="misc")[1]
    with_folder = _resolve({}, folder="Shipping Info")[1]
    with_neither = _resolve({})[1]

    # Then the option wins, then the folder's name as a slug, then the default
    assert with_option == "misc"
    assert with_folder == "shipping-info"
    assert with_neither == "general"


def test_title_falls_back_to_the_heading_then_the_file_name_and_language_is_detected() -> None:
    # Given Spanish documents that declare nothing, one with a heading and one without
    # When their metadata is resolved
    with_heading = _resolve({})
    without_heading = resolve(
        {}, SPANISH, file_stem="envios", folder=None, category=None, default_category="general"
    )

    # Then the title is the heading, or else the file name, and the language is detected
    assert with_heading == ("Envíos", "general", "es")
    assert without_heading.title == "envios"


def test_a_regional_language_tag_becomes_its_language() -> None:
    # When documents declare regional language tags, and one a tag that is not a language
    austrian = _resolve({"language": "de-AT"})[2]
    brazilian = _resolve({"language": "pt_BR"})[2]
    nonsense = _resolve({"language": "not a language"})[2]

    # Then each regional tag becomes its language, and the nonsense is detected instead
    assert austrian == "de"
    assert brazilian == "pt"
    assert nonsense == "es"


def test_front_matter_values_may_be_quoted_and_needs_its_closing_fence() -> None:
    # Given front matter with a quoted value, and front matter without its closing fence
    quoted = '---\ntitle: "Tents: specs"\n---\nBody'
    unclosed = "---\ntitle: x\nBody without a closing fence"

    # When each is split
    quoted_meta, _ = split_front_matter(quoted)
    unclosed_split = split_front_matter(unclosed)

    # Then the quotes are dropped, and the unclosed one is all text, without metadata
    assert quoted_meta == {"title": "Tents: specs"}
    assert unclosed_split == ({}, unclosed)


def test_every_chunk_carries_source_title_category_language_id_and_heading(
    tmp_path: Path,
) -> None:
    # Given a Markdown document in a folder, and a Spanish text file beside the folder
    folder = tmp_path / "kb" / "policies"
    folder.mkdir(parents=True)
    (folder / "returns.md").write_text(
        "# Returns\nYou can return items within 30 days.\n## Refunds\nWe refund in 14 days.",
        encoding="utf-8",
    )
    (tmp_path / "kb" / "envios.txt").write_text(SPANISH, encoding="utf-8")

    # When they are ingested
    index = ingest([tmp_path / "kb"], IngestOptions()).index

    # Then every chunk carries all its metadata, from the document, the folder or detection
    assert [c.model_dump() for c in index.chunks] == [
        {
            "source": "envios.txt",
            "title": "envios",
            "text": SPANISH,
            "category": "general",
            "language": "es",
            "chunk_id": "envios.txt#1",
            "heading": "",
        },
        {
            "source": "policies/returns.md",
            "title": "Returns",
            "text": "# Returns\nYou can return items within 30 days.",
            "category": "policies",
            "language": "en",
            "chunk_id": "policies/returns.md#1",
            "heading": "Returns",
        },
        {
            "source": "policies/returns.md",
            "title": "Returns",
            "text": "## Refunds\nWe refund in 14 days.",
            "category": "policies",
            "language": "en",
            "chunk_id": "policies/returns.md#2",
            "heading": "Refunds",
        },
    ]
