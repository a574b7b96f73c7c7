"""Chunking: sections follow headings; long sections are cut with overlap under their heading."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import pytest

from concierge_cli.ingestion.chunker import chunk_text


def _long_section(heading: str, sentences: int, word: str = "Sentence") -> str:
    return f"{heading}\n" + " ".join(f"{word} {n} ends here." for n in range(sentences))


def test_sections_start_at_level_one_and_two_headings_with_the_title_kept_with_the_first() -> None:
    # Given a document with a title, two sections and a sub-section
    text = "# Returns\nIntro.\n\n## Window\n30 days.\n### Exceptions\nSale items.\n## Refunds\n14 days."

    # When it is chunked
    chunks = chunk_text(text)

    # Then each level-one or level-two heading starts a chunk; a level-three one does not
    assert [c.text for c in chunks] == [
        "# Returns\nIntro.",
        "## Window\n30 days.\n### Exceptions\nSale items.",
        "## Refunds\n14 days.",
    ]
    assert [c.heading for c in chunks] == ["Returns", "Window", "Refunds"]


def test_a_bare_title_is_never_a_chunk_of_its_own() -> None:
    # Given a title with nothing under it but a section, and an empty last section
    text = "# Order tracking\n\n## Which emails?\nThree of them.\n\n## Empty section\n"

    # When it is chunked
    chunks = chunk_text(text)

    # Then the title joins the first section, and the empty section is dropped
    assert [c.text for c in chunks] == ["# Order tracking\n\n## Which emails?\nThree of them."]
    assert chunks[0].heading == "Which emails?"


def test_text_before_any_heading_is_a_chunk_without_heading() -> None:
    # When text without any heading is chunked
    (chunk,) = chunk_text("Just a paragraph.\nAnd a line.")

    # Then it is one chunk, all of it, with no heading
    assert (chunk.heading, chunk.text) == ("", "Just a paragraph.\nAnd a line.")


def test_hash_lines_inside_code_fences_are_not_headings() -> None:
    # Given a section whose code block has a line starting with "#"
    text = "## Setup\nRun this:\n```sh\n# install\nmake install\n```\nDone."

    # When it is chunked
    (chunk,) = chunk_text(text)

    # Then the section stays one chunk under its own heading
    assert chunk.heading == "Setup"
    assert chunk.text == text


def test_a_long_section_is_cut_into_pieces_that_fit_each_under_its_heading() -> None:
    # Given a short intro and a section of sixty sentences
    text = "# Guide\nShort intro.\n\n" + _long_section("## Care", 60)

    # When it is chunked into pieces of at most 400 characters
    chunks = chunk_text(text, max_chars=400, overlap=80)

    # Then the section is several pieces, each within the limit and under its heading
    care = [c for c in chunks if c.heading == "Care"]
    assert len(care) > 3
    assert all(len(c.text) <= 400 for c in chunks)
    assert all(c.text.startswith("## Care\n") for c in care)
    # And every sentence of the section is in some piece, whole
    for n in range(60):
        assert any(f"Sentence {n} ends here." in c.text for c in care), n


def test_consecutive_pieces_overlap_from_a_sentence_start() -> None:
    # Given a long section
    text = _long_section("## Care", 60)

    # When it is chunked with an overlap of 80 characters
    chunks = chunk_text(text, max_chars=400, overlap=80)

    # Then each piece starts with whole sentences repeated from the end of the one before
    for before, after in itertools.pairwise(chunks):
        body = after.text.removeprefix("## Care\n")
        first_sentence = re.match(r"Sentence \d+ ends here\.", body)
        assert first_sentence, body[:40]
        assert first_sentence.group() in before.text  # the repeated part
        assert 0 < len(first_sentence.group()) <= 80


def test_without_overlap_nothing_is_repeated() -> None:
    # Given a long section of sixty sentences
    text = _long_section("## Care", 60)

    # When it is chunked without overlap
    chunks = chunk_text(text, max_chars=400, overlap=0)

    # Then every sentence appears exactly once
    bodies = [c.text.removeprefix("## Care\n") for c in chunks]
    sentences = [s for body in bodies for s in re.findall(r"Sentence \d+ ends here\.", body)]
    assert len(sentences) == len(set(sentences)) == 60


def test_overlap_never_crosses_a_heading() -> None:
    # Given two long sections with different words
    text = _long_section("## First", 30, "Alpha") + "\n\n" + _long_section("## Second", 30, "Beta")

    # When they are chunked with overlap
    chunks = chunk_text(text, max_chars=400, overlap=100)

    # Then no piece of one section repeats words of the other
    assert all("Alpha" not in c.text for c in chunks if c.heading == "Second")
    assert all("Beta" not in c.text for c in chunks if c.heading == "First")


def test_paragraph_boundaries_are_preferred_to_sentence_boundaries() -> None:
    # Given a section of four paragraphs of six sentences each
    paragraph = "A sentence in a paragraph. " * 6
    text = "## Notes\n" + "\n\n".join(paragraph.strip() for _ in range(4))

    # When it is chunked into pieces too small for all four
    chunks = chunk_text(text, max_chars=400, overlap=0)

    # Then each piece ends at a paragraph's end, two paragraphs a piece
    assert all(c.text.removeprefix("## Notes\n").strip().endswith("paragraph.") for c in chunks)
    assert [c.text.count("\n\n") for c in chunks] == [1, 1]


def test_text_without_any_boundary_is_cut_hard_but_kept_whole() -> None:
    # Given a thousand characters without a space, sentence or paragraph
    blob = "x" * 1_000

    # When they are chunked into pieces of at most 300 characters
    chunks = chunk_text(blob, max_chars=300, overlap=0)

    # Then each piece fits, and together they are the whole text
    assert all(len(c.text) <= 300 for c in chunks)
    assert "".join(c.text for c in chunks) == blob


_CHUNK_IN_A_NEW_PROCESS = """
import json, sys
from concierge_cli.ingestion.chunker import chunk_text
chunks = chunk_text(sys.stdin.read(), 350, 60)
print(json.dumps([(chunk.heading, chunk.text) for chunk in chunks]))
"""


def test_chunking_is_the_same_in_every_process() -> None:
    # Given a text chunked by two interpreters with different hash seeds (set and dict
    # iteration order is where nondeterminism would come from)
    text = _long_section("## Care", 80) + "\n\n## More\nText."

    # When each chunks it
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CHUNK_IN_A_NEW_PROCESS],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]

    # Then both give the same chunks, which are this process's too: an unchanged document
    # keeps its chunks (and the knowledge-base version) on every ingest
    expected = [[chunk.heading, chunk.text] for chunk in chunk_text(text, 350, 60)]
    assert [json.loads(run) for run in runs] == [expected, expected]


@pytest.mark.parametrize(("max_chars", "overlap"), [(100, 0), (1_000, 300), (1_000, -1)])
def test_impossible_sizes_are_refused(max_chars: int, overlap: int) -> None:
    # When / Then chunking with a size too small, or an overlap too large or negative, is refused
    with pytest.raises(ValueError, match=r"chunk|overlap"):
        chunk_text("text", max_chars, overlap)
