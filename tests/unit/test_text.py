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
    # When the language of a question is detected
    detected = detect_language(question)

    # Then it is the language its words belong to
    assert detected == language


def test_no_evidence_gives_the_default_language() -> None:
    # Given a question of a product name only, which belongs to no language
    question = "Cirrus 2"

    # When its language is detected
    detected = detect_language(question, default="en")

    # Then it is the default
    assert detected == "en"


def test_terms_fold_accents_drop_stopwords_and_share_stems() -> None:
    # When words with and without accents, with a stopword, and in singular and plural become
    # terms
    accented, plain = terms("Envíos"), terms("envio")
    with_stopword = terms("the tents")
    plural, singular = terms("tents"), terms("tent")

    # Then accents are folded, the stopword is gone, and both numbers share a stem
    assert accented == plain
    assert accented
    assert "the" not in with_stopword
    assert plural == singular
    assert plural


def test_headings_are_not_sentences_and_tables_rows_are() -> None:
    # Given a heading, two sentences and a table
    text = "# Prices\nThe Pika costs 39 EUR. The Kestrel costs more!\n| Item | Price |\n|---|---|\n| Pika | 39 |"

    # When the text is split into sentences
    split = sentences(text)

    # Then the heading and the table's rule are left out, and each table row is a sentence
    assert split == [
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
    # When the forms of one word are stemmed
    stems = _stems(language, *forms)

    # Then they all have the same stem
    assert len(stems) == 1


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
    # When two different words that look alike are stemmed
    stems = _stems(language, first, second)

    # Then their stems differ
    assert len(stems) == 2


def test_a_final_s_is_kept_where_it_belongs_to_the_german_word() -> None:
    # When a German word ending in s, and its plural, are stemmed
    singular = _stems("de", "Preis")
    plural = _stems("de", "Preise")

    # Then both keep the s
    assert singular == plural == {"preis"}


def test_language_terms_drop_function_words_of_every_language() -> None:
    # When questions in Spanish, German and English become terms
    spanish = terms("¿Tenéis la chaqueta en otra talla?", "es")
    german = terms("Habt ihr das auch in Blau?", "de")
    english = terms("Can I return it?", "en")

    # Then only the words that carry meaning are left
    assert spanish == terms("chaqueta talla", "es")
    assert spanish
    assert german == terms("Blau", "de")
    assert german
    assert english == ["return"]


def test_folding_does_not_depend_on_how_accents_are_encoded() -> None:
    # Given an accented word with its accent composed, and decomposed
    composed, decomposed = "Devolución", "Devolucio\u0301n"

    # When both are folded, and so are a sharp s and a ligature
    folded_composed, folded_decomposed = fold(composed), fold(decomposed)
    folded_special = fold("Straße ﬁt")

    # Then both give the same plain word, and the special letters are spelled out
    assert folded_composed == folded_decomposed == "devolucion"
    assert folded_special == "strasse fit"


def test_a_german_compound_splits_at_its_known_head() -> None:
    # Given the stems of some known German words
    known = frozenset({stem("versand", "de"), stem("lieferung", "de"), stem("kosten", "de")})

    # When / Then a compound ending in a known word splits into its modifier and that head
    assert split_compound("expressversand", known) == ("express", "versand")
    assert split_compound("expresslieferung", known) == ("express", "lieferung")

    # When / Then the modifier is split again when it is a compound itself
    assert split_compound("versandkostenpauschale", known | {stem("pauschale", "de")}) == (
        "versand",
        "kosten",
        "pauschale",
    )

    # When / Then a word without a known head, or a known word alone, does not split
    assert split_compound("regenjacke", known) == ()
    assert split_compound("versand", known) == ()


def test_compound_parts_follow_the_compound_in_the_terms() -> None:
    # Given a known German word
    known = frozenset({stem("versand", "de")})

    # When a compound ending in it becomes terms
    compound_terms = terms("Expressversand", "de", known)

    # Then the compound comes first, followed by its parts
    assert compound_terms == ["expressversand", "express", "versand"]
