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
    declared = {"title": "Shipping", "category": "Logistics", "language": "EN"}
    assert _resolve(declared, folder="faq", category="misc") == ("Shipping", "logistics", "en")


def test_category_falls_back_to_the_option_then_the_folder_then_the_default() -> None:
    assert _resolve({}, folder="Shipping Info", category="misc")[1] == "misc"
    assert _resolve({}, folder="Shipping Info")[1] == "shipping-info"
    assert _resolve({})[1] == "general"


def test_title_falls_back_to_the_first_heading_and_language_is_detected() -> None:
    assert _resolve({}) == ("Envíos", "general", "es")
    meta = resolve(
        {}, SPANISH, file_stem="envios", folder=None, category=None, default_category="general"
    )
    assert meta.title == "envios"


def test_a_regional_language_tag_becomes_its_language() -> None:
    assert _resolve({"language": "de-AT"})[2] == "de"
    assert _resolve({"language": "pt_BR"})[2] == "pt"
    assert _resolve({"language": "not a language"})[2] == "es"  # detected instead


def test_front_matter_values_may_be_quoted_and_needs_its_closing_fence() -> None:
    assert split_front_matter('---\ntitle: "Tents: specs"\n---\nBody')[0] == {
        "title": "Tents: specs"
    }
    unclosed = "---\ntitle: x\nBody without a closing fence"
    assert split_front_matter(unclosed) == ({}, unclosed)


def test_every_chunk_carries_source_title_category_language_id_and_heading(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "kb" / "policies"
    folder.mkdir(parents=True)
    (folder / "returns.md").write_text(
        "# Returns\nYou can return items within 30 days.\n## Refunds\nWe refund in 14 days.",
        encoding="utf-8",
    )
    (tmp_path / "kb" / "envios.txt").write_text(SPANISH, encoding="utf-8")

    index = ingest([tmp_path / "kb"], IngestOptions()).index

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
