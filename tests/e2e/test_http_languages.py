"""Questions are answered in their language, from documents in that language."""

from __future__ import annotations

import pytest
from e2e.http_support import ChatApi, sources


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("¿Cuántos días tengo para devolver un pedido?", "es"),
        ("Wie lange dauert der Versand nach Deutschland?", "de"),
        ("How many days do I have to return an order?", "en"),
    ],
    ids=["spanish", "german", "english"],
)
def test_a_question_is_answered_in_its_language_from_its_documents(
    api: ChatApi, question: str, language: str
) -> None:
    # When a question is asked in one of the knowledge base's languages
    body = api.ask(question)

    # Then the reply is tagged with that language and cites documents written in it
    assert body["language"] == language
    assert body["citations"]
    assert all(source.startswith(f"{language}-") for source in sources(body)), sources(body)


def test_a_german_shipping_question_cites_the_german_shipping_page(api: ChatApi) -> None:
    # When a German question about shipping (Versand) is asked
    body = api.ask("Wie lange dauert der Versand nach Deutschland?")

    # Then the German shipping page answers it
    assert body["language"] == "de"
    assert "de-versand.md" in sources(body)
