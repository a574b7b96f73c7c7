import pytest

from concierge.text import detect_language, sentences, terms


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("What do you sell?", "en"),
        ("Which of them is the cheapest?", "en"),
        ("¿Cuántos días tengo para devolver un pedido?", "es"),
        ("¿Dónde está la tienda de Valencia?", "es"),
        ("Wie lange dauert der Versand nach Deutschland?", "de"),
        ("Quels sont vos horaires d'ouverture ?", "fr"),
    ],
)
def test_language_is_detected_from_the_words_used(question: str, language: str) -> None:
    assert detect_language(question) == language


def test_no_evidence_gives_the_default_language() -> None:
    assert detect_language("Cirrus 2", default="en") == "en"


def test_terms_fold_accents_drop_stopwords_and_share_stems() -> None:
    assert terms("Envíos") == terms("envio")
    assert "the" not in terms("the tents")
    assert terms("tents") == terms("tent")


def test_headings_are_not_sentences_and_tables_rows_are() -> None:
    text = "# Prices\nThe Pika costs 39 EUR. The Kestrel costs more!\n| Item | Price |\n|---|---|\n| Pika | 39 |"
    assert sentences(text) == [
        "The Pika costs 39 EUR.",
        "The Kestrel costs more!",
        "Item, Price",
        "Pika, 39",
    ]
