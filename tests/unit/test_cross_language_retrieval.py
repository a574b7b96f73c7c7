"""Cross-language retrieval: a question that comes with `search_query` (its translation into
the knowledge base's main language) is searched with both, the translation without the language
filter, and the two rankings are fused; a knowledge base backend that can runs both at once."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from concierge.adapters.retrieval.bedrock_kb import BedrockKnowledgeBase
from concierge.adapters.retrieval.local_index import LocalIndex
from concierge.adapters.retrieval.port import Query, SearchFilter, fuse
from concierge.knowledge import Chunk, IndexFile
from concierge.models.state import Passage, RetrieveInput
from concierge.steps.retrieve import retrieve

FAR_AWAY = 4_102_444_800_000


def _passage(source: str, score: float = 1.0, text: str = "") -> Passage:
    return Passage(
        source=source, title=source, text=text or source, category="c", language="en", score=score
    )


def _request(question: str, search_query: str | None, language: str = "de") -> RetrieveInput:
    return RetrieveInput(
        request_id="r",
        question=question,
        category="policies",
        language=language,
        deadline_ms=FAR_AWAY,
        search_query=search_query,
    )


class Recording:
    """A backend that answers each query from a table and records what it was asked."""

    def __init__(self, answers: dict[str, list[Passage]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, SearchFilter]] = []

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        self.asked.append((query, search_filter))
        return self.answers.get(query, [])[:limit]


def _english_index() -> LocalIndex:
    chunks = [
        Chunk(
            source="en-warranty.md",
            title="Warranty",
            text="Backpacks carry a five-year warranty.",
            category="policies",
            language="en",
        ),
        Chunk(
            source="en-returns.md",
            title="Returns",
            text="Returns are free within 30 days.",
            category="policies",
            language="en",
        ),
        Chunk(
            source="de-versand.md",
            title="Versand",
            text="Wir versenden innerhalb von zwei Tagen.",
            category="policies",
            language="de",
        ),
    ]
    return LocalIndex(IndexFile(kb_version="v", chunks=chunks), mode="lexical")


def test_a_german_question_finds_the_english_document_through_its_translation() -> None:
    # Given a knowledge base that answers warranty questions only in English
    index = _english_index()
    question = "Wie lange habe ich Garantie auf einen Rucksack?"

    # When the German question is retrieved without a translation, and with one
    alone = retrieve(_request(question, None), index, 4)
    translated = retrieve(_request(question, "How long is the warranty on a backpack?"), index, 4)

    # Then alone it misses the English page; with the translation it finds it first, under the
    # classification's own filter
    assert "en-warranty.md" not in [p.source for p in alone.passages]
    assert translated.passages[0].source == "en-warranty.md"
    assert translated.filter_used == "category+language"


def test_the_translation_is_searched_without_the_language_filter() -> None:
    # Given a backend that records its searches
    backend = Recording({"warranty": [_passage("en-warranty.md")]})

    # When a German question with its translation is retrieved
    retrieve(_request("Garantie?", "warranty"), backend, 4)

    # Then the question was searched under category and language, the translation under the
    # category alone, and both again without a filter (to check the classification)
    assert backend.asked == [
        ("Garantie?", SearchFilter(category="policies", language="de")),
        ("warranty", SearchFilter(category="policies")),
        ("Garantie?", SearchFilter()),
        ("warranty", SearchFilter()),
    ]


@pytest.mark.parametrize("search_query", [None, "", "  ", "garantie?"])
def test_without_a_different_translation_only_the_question_is_searched(
    search_query: str | None,
) -> None:
    # Given a backend that records its searches
    backend = Recording({"Garantie?": [_passage("de-garantie.md", 3.2)]})

    # When the question is retrieved with no translation, an empty one or the question itself
    result = retrieve(_request("Garantie?", search_query), backend, 4)

    # Then only the question is searched (under the classification, and without a filter to
    # check it), and its passages keep the backend's scores
    assert [query for query, _ in backend.asked] == ["Garantie?", "Garantie?"]
    assert [(p.source, p.score) for p in result.passages] == [("de-garantie.md", 3.2)]


def test_fusion_puts_what_both_rankings_found_first_and_scores_it_on_a_0_to_1_scale() -> None:
    # Given two rankings that share one passage
    question = [_passage("a.md"), _passage("shared.md")]
    translation = [_passage("shared.md"), _passage("b.md")]

    # When they are fused
    fused = fuse([question, translation], 3)

    # Then the shared passage leads, the question's first before the translation's second,
    # and the scores fall within (0, 1)
    assert [p.source for p in fused] == ["shared.md", "a.md", "b.md"]
    assert 1.0 > fused[0].score > fused[1].score > fused[2].score > 0


def test_a_score_floor_applies_to_each_search_before_the_fusion() -> None:
    # Given a backend whose question search finds only a weak passage
    backend = Recording(
        {
            "Garantie?": [_passage("weak.md", 0.1)],
            "warranty": [_passage("en-warranty.md", 0.9)],
        }
    )

    # When the question is retrieved with a score floor
    result = retrieve(_request("Garantie?", "warranty"), backend, 4, min_score=0.5)

    # Then the weak passage is dropped on the backend's scale, and the translation's remains
    assert [p.source for p in result.passages] == ["en-warranty.md"]


class Together:
    """A bedrock-agent-runtime stand-in whose Retrieve returns only once two calls are in
    flight: calls made one after the other would break the barrier."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.queries: list[str] = []

    def retrieve(self, **arguments: Any) -> dict[str, Any]:
        self.barrier.wait()
        text = arguments["retrievalQuery"]["text"]
        self.queries.append(text)
        return {
            "retrievalResults": [
                {
                    "content": {"text": f"about {text}"},
                    "metadata": {"source": f"{text}.md", "language": "en"},
                    "score": 0.5,
                }
            ]
        }


def test_the_knowledge_base_searches_the_question_and_its_translation_at_once() -> None:
    # Given a knowledge base client that answers only when two searches run at the same time
    client = Together()
    kb = BedrockKnowledgeBase("KB12345678", client)
    queries: Sequence[Query] = [
        ("Garantie?", SearchFilter(language="de")),
        ("warranty", SearchFilter()),
    ]

    # When both are searched
    rankings = kb.search_many(queries, 4)

    # Then both calls ran together, and each ranking belongs to its query, in order
    assert sorted(client.queries) == ["Garantie?", "warranty"]
    assert [[p.source for p in ranking] for ranking in rankings] == [
        ["Garantie?.md"],
        ["warranty.md"],
    ]
