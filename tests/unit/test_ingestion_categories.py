"""Ingest records every category of the knowledge base with a description: from the category's
folder file, the knowledge base's file, front matter, or the titles of its documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from concierge.knowledge import IndexFile
from concierge_cli.ingestion import CategoryFileError, ingest
from concierge_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_KB = REPO_ROOT / "knowledge" / "sample"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _doc(title: str, body: str = "Some text.", **front: str) -> str:
    matter = "".join(f"{key}: {value}\n" for key, value in front.items())
    return f"---\ntitle: {title}\n{matter}---\n# {title}\n{body}\n"


def test_a_docusaurus_category_file_describes_its_folder(tmp_path: Path) -> None:
    # Given a folder with a Docusaurus category file, and one whose file keeps the description
    # under "link" as a generated index does
    _write(tmp_path / "cli" / "_category_.json", '{"label": "CLI", "description": "Commands."}')
    _write(tmp_path / "cli" / "run.md", _doc("lodestar run"))
    _write(tmp_path / "cli" / "init.md", _doc("lodestar init"))
    _write(
        tmp_path / "api" / "_category_.json",
        json.dumps({"label": "HTTP API reference", "link": {"description": "Endpoints."}}),
    )
    _write(tmp_path / "api" / "jobs.md", _doc("POST /jobs"))

    # When the folder is ingested
    result = ingest([tmp_path])

    # Then each category has its file's description (a label that says more than the folder's
    # name leads it), its document count, and neither file became a document
    categories = result.index.categories
    assert categories["cli"].description == "Commands."
    assert categories["cli"].source == "category-file"
    assert categories["cli"].documents == 2
    assert categories["api"].description == "HTTP API reference: Endpoints."
    assert {chunk.source for chunk in result.index.chunks} == {
        "cli/run.md",
        "cli/init.md",
        "api/jobs.md",
    }
    assert all("_category_" not in outcome.source for outcome in result.report.files)


def test_a_knowledge_base_file_describes_the_categories_of_a_flat_folder_in_its_order(
    tmp_path: Path,
) -> None:
    # Given a flat folder whose documents declare their categories, and a _categories_.json
    # that describes them (one as a string, one with a label), pricing first
    _write(
        tmp_path / "_categories_.json",
        json.dumps(
            {
                "pricing": "prices and discounts",
                "policies": {"label": "Policies", "description": "returns and warranty"},
            }
        ),
    )
    _write(tmp_path / "returns.md", _doc("Returns", category="policies"))
    _write(tmp_path / "prices.md", _doc("Prices", category="pricing"))
    _write(tmp_path / "history.md", _doc("Our story", category="company"))

    # When it is ingested
    index = ingest([tmp_path]).index

    # Then the described categories come first, in the file's order, then the others
    assert list(index.categories) == ["pricing", "policies", "company"]
    assert index.categories["pricing"].description == "prices and discounts"
    assert index.categories["policies"].description == "returns and warranty"
    assert index.categories["pricing"].source == "categories-file"
    # And a category no file describes is described by its documents' titles
    assert index.categories["company"].description == "Documents: Our story"
    assert index.categories["company"].source == "titles"


def test_front_matter_describes_a_category_no_file_describes(tmp_path: Path) -> None:
    # Given a folder without a category file, two of whose documents describe it in front
    # matter (the same words), and one differently
    shared = "Settings and their defaults"
    _write(tmp_path / "config" / "a.md", _doc("Alpha", category_description=shared))
    _write(tmp_path / "config" / "b.md", _doc("Beta", category_description="Other words"))
    _write(tmp_path / "config" / "c.md", _doc("Gamma", category_description=shared))

    # When it is ingested
    info = ingest([tmp_path]).index.categories["config"]

    # Then the most common description is the category's
    assert (info.description, info.source, info.documents) == (shared, "front-matter", 3)


def test_a_folder_file_wins_over_front_matter_and_the_knowledge_base_file(tmp_path: Path) -> None:
    # Given a category described three ways
    _write(tmp_path / "_categories_.json", '{"errors": "from the knowledge base file"}')
    _write(tmp_path / "errors" / "_category_.json", '{"description": "from the folder file"}')
    _write(tmp_path / "errors" / "e1.md", _doc("E1", category_description="from front matter"))

    # When it is ingested
    info = ingest([tmp_path]).index.categories["errors"]

    # Then the folder's own file describes it
    assert (info.description, info.source) == ("from the folder file", "category-file")


def test_titles_describe_a_category_in_at_most_twelve_titles(tmp_path: Path) -> None:
    # Given a category with 15 documents and no description anywhere
    for number in range(15):
        _write(tmp_path / "concepts" / f"c{number:02}.md", _doc(f"Concept {number:02}"))

    # When it is ingested
    info = ingest([tmp_path]).index.categories["concepts"]

    # Then the first 12 titles in source order describe it
    assert info.description == "Documents: " + "; ".join(f"Concept {n:02}" for n in range(12))
    assert info.documents == 15


def test_an_unreadable_category_file_stops_the_ingest_with_its_path(tmp_path: Path) -> None:
    # Given a category file that is not JSON
    _write(tmp_path / "cli" / "_category_.json", "{label: CLI")
    _write(tmp_path / "cli" / "run.md", _doc("run"))

    # When the folder is ingested, as a function and through the CLI
    with pytest.raises(CategoryFileError) as raised:
        ingest([tmp_path])
    code = main(["ingest", str(tmp_path), "--index", str(tmp_path / "out" / "index.json")])

    # Then the error names the file, the command is a usage error, and nothing is written
    assert "cli/_category_.json" in str(raised.value)
    assert code == 2
    assert not (tmp_path / "out").exists()


def test_a_re_ingest_keeps_the_front_matter_descriptions_of_unchanged_documents(
    tmp_path: Path,
) -> None:
    # Given a folder ingested once, whose one document describes its category
    _write(tmp_path / "config" / "a.md", _doc("Alpha", category_description="Settings"))
    _write(tmp_path / "config" / "b.md", _doc("Beta"))
    first = ingest([tmp_path])

    # When another document changes and the folder is ingested again with the manifest
    _write(tmp_path / "config" / "b.md", _doc("Beta", body="Changed."))
    second = ingest([tmp_path], previous=first.manifest)

    # Then the unchanged document was reused, and its description still describes the category
    assert [o.status.value for o in second.report.files] == ["unchanged", "changed"]
    assert second.index.categories["config"].description == "Settings"


def test_a_new_description_is_a_new_knowledge_base_version(tmp_path: Path) -> None:
    # Given a folder ingested once
    _write(tmp_path / "_categories_.json", '{"guides": "How-to guides"}')
    _write(tmp_path / "guides" / "a.md", _doc("Alpha"))
    before = ingest([tmp_path]).index.kb_version

    # When only the category's description changes
    _write(tmp_path / "_categories_.json", '{"guides": "Step-by-step guides"}')
    after = ingest([tmp_path]).index.kb_version

    # Then the version changes: questions are routed by the descriptions, and the cache keys
    # carry the version
    assert before != after


def test_an_index_written_before_categories_were_recorded_still_loads() -> None:
    # Given an index file of the format before categories
    old = '{"format_version": 1, "kb_version": "abc", "chunks": [{"source": "a.md", "title": "A", "text": "x", "category": "faq", "language": "en"}]}'

    # When it is read
    index = IndexFile.model_validate_json(old)

    # Then it has no categories, and its catalog still knows its languages
    assert index.categories == {}
    assert index.catalog().languages == {"en": 1}


def test_the_sample_describes_its_five_categories_in_its_knowledge_base_file() -> None:
    # When the sample knowledge base is ingested
    index = ingest([SAMPLE_KB]).index
    catalog = index.catalog()

    # Then its five categories are described by its _categories_.json, in that file's order,
    # and English is its main language, with Spanish covered and German not
    assert list(index.categories) == ["products", "pricing", "policies", "support", "company"]
    assert {info.source for info in index.categories.values()} == {"categories-file"}
    assert sum(info.documents for info in index.categories.values()) == 28
    assert "gift cards" in index.categories["pricing"].description
    assert catalog.main_language == "en"
    assert catalog.covered_languages() == ["en", "es"]
