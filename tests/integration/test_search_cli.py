"""`concierge search`: the chain's retriever, filtered as asked, printed for a person or as one
JSON object (`{"passages": [{source, title, category, language, score, snippet}]}`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from concierge import wiring
from concierge.knowledge import IndexFile
from concierge_cli.main import main

PASSAGE_KEYS = {"source", "title", "category", "language", "score", "snippet"}


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The command points the settings at an index in its own process; here, undo it after.
    # setenv first: monkeypatch then restores each name as it was, absent included (delenv
    # alone records nothing for an absent name, and the command's value outlived the test).
    for name in ("CONCIERGE_RETRIEVER", "CONCIERGE_INDEX_URI", "CONCIERGE_TOP_K"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    yield
    wiring.reset()


def search(repo_root: Path, *argv: str) -> int:
    return main(["--root", str(repo_root), "search", *argv])


def test_json_prints_the_ranked_passages_in_the_contract_shape(
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the sample knowledge base's index
    path, _ = sample_index

    # When a question is searched for 3 passages, as JSON
    code = search(
        repo_root, "How long is the warranty on tents?", "-k", "3", "--index", str(path), "--json"
    )

    # Then one object holds the passages, best first, each with exactly the contract's fields
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["passages"]
    passages = document["passages"]
    assert len(passages) == 3
    assert all(set(passage) == PASSAGE_KEYS for passage in passages)
    assert passages[0]["source"] == "en-warranty.md"
    scores = [passage["score"] for passage in passages]
    assert scores == sorted(scores, reverse=True)
    assert all(len(passage["snippet"]) <= 240 for passage in passages)


def test_the_filters_are_the_chains_metadata_filter(
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the sample index, whose German documents include a shop page and a shipping page
    path, _ = sample_index

    # When the same query is searched within German and within a category that has no match
    search(repo_root, "Versand Lieferung", "--language", "DE", "--index", str(path), "--json")
    german = json.loads(capsys.readouterr().out)["passages"]
    search(repo_root, "Versand", "--category", "nothing-here", "--index", str(path), "--json")
    empty = json.loads(capsys.readouterr().out)["passages"]

    # Then only German passages come back, and an empty filter stays empty (it is not relaxed)
    assert german and {passage["language"] for passage in german} == {"de"}
    assert german[0]["source"] == "de-versand.md"
    assert empty == []


def test_text_output_ranks_passages_with_their_metadata(
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the sample index
    path, _ = sample_index

    # When a question is searched without --json, for the chain's default number of passages
    code = search(repo_root, "Which payment methods do you accept?", "--index", str(path))

    # Then each passage is a numbered line with score, source, category and language
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    ranked = [line for line in lines if line[:1].isdigit()]
    assert len(ranked) == 4
    assert ranked[0].startswith("1. ") and "en-payment-methods.md" in ranked[0]
    assert "[pricing, en]" in ranked[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["   "], "the query is empty"),
        (["tents", "-k", "0"], "-k must be between 1 and 100"),
        (["tents", "--index", "missing/index.json"], "no index at"),
    ],
)
def test_bad_input_is_a_usage_error(
    repo_root: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a query, a limit or an index that cannot be searched
    # When it is searched
    code = search(repo_root, *argv)

    # Then the command fails with exit code 2 and says why
    assert code == 2
    assert message in capsys.readouterr().err
