import pytest

from concierge.text import detect_language, fold, sentences, split_compound, stem, terms


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


def _stems(language: str, *forms: str) -> set[str]:
    return {stem(fold(form), language) for form in forms}


@pytest.mark.parametrize(
    ("language", "forms"),
    [
        ("en", ["return", "returns", "returned", "returning"]),
        ("en", ["delivery", "deliveries", "delivered", "deliver"]),
        ("en", ["ship", "ships", "shipped", "shipping"]),
        ("en", ["store", "stores", "stored"]),
        ("es", ["devolver", "devolución", "devoluciones", "devolverla", "devuelven", "devolvemos"]),
        ("es", ["cuesta", "cuestan", "coste", "costes", "costar"]),
        ("es", ["envío", "envíos", "enviar", "enviamos", "envía"]),
        ("es", ["pierdo", "perdí", "perder"]),
        ("es", ["aparcar", "aparcamiento"]),
        ("es", ["reparación", "reparaciones", "reparar"]),
        ("es", ["primero", "primera", "primeros"]),
        ("es", ["lugar", "lugares"]),
        ("de", ["Lieferung", "Lieferungen", "liefern"]),
        ("de", ["Bestellung", "bestellen", "Bestellungen"]),
        ("de", ["Größe", "Größen", "Groesse"]),
        ("de", ["Rucksack", "Rucksäcke", "Rucksacks"]),
        ("de", ["Geschäft", "Geschäfts", "Geschaeft"]),
    ],
)
def test_forms_of_one_word_share_a_stem(language: str, forms: list[str]) -> None:
    assert len(_stems(language, *forms)) == 1


@pytest.mark.parametrize(
    ("language", "first", "second"),
    [
        ("en", "order", "other"),
        ("es", "tienda", "tarjeta"),
        ("es", "venta", "ventana"),
        ("de", "Preis", "Reise"),
        ("de", "Farbe", "Fahrt"),
    ],
)
def test_different_words_keep_different_stems(language: str, first: str, second: str) -> None:
    assert len(_stems(language, first, second)) == 2


def test_a_final_s_is_kept_where_it_belongs_to_the_german_word() -> None:
    assert _stems("de", "Preis") == _stems("de", "Preise") == {"preis"}


def test_language_terms_drop_function_words_of_every_language() -> None:
    assert terms("¿Tenéis la chaqueta en otra talla?", "es") == terms("chaqueta talla", "es")
    assert terms("Habt ihr das auch in Blau?", "de") == terms("Blau", "de")
    assert terms("Can I return it?", "en") == ["return"]


def test_folding_does_not_depend_on_how_accents_are_encoded() -> None:
    composed, decomposed = "Devolución", "Devolucio\u0301n"
    assert fold(composed) == fold(decomposed) == "devolucion"
    assert fold("Straße ﬁt") == "strasse fit"


def test_a_german_compound_splits_at_its_known_head() -> None:
    known = frozenset({stem("versand", "de"), stem("lieferung", "de"), stem("kosten", "de")})
    assert split_compound("expressversand", known) == ("express", "versand")
    assert split_compound("expresslieferung", known) == ("express", "lieferung")
    # the modifier is split again when it is a compound itself
    assert split_compound("versandkostenpauschale", known | {stem("pauschale", "de")}) == (
        "versand",
        "kosten",
        "pauschale",
    )
    assert split_compound("regenjacke", known) == ()  # no known head
    assert split_compound("versand", known) == ()  # too short to be a compound


def test_compound_parts_follow_the_compound_in_the_terms() -> None:
    known = frozenset({stem("versand", "de")})
    assert terms("Expressversand", "de", known) == ["expressversand", "express", "versand"]
