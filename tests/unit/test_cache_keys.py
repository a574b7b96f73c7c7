import pytest

from concierge.cache_keys import cache_key, cache_scope, normalise_question


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("What do you sell?", "what do you sell"),
        ("  What   do\tyou\nSELL ??  ", "what do you sell"),
        ("¿Qué vendéis?", "qué vendéis"),
        ("Ｗｈａｔ do you sell", "what do you sell"),  # full-width letters (NFKC)
        ("Straße!", "strasse"),  # case folding, not just lower-casing
    ],
)
def test_normalisation_folds_away_what_does_not_change_the_question(
    raw: str, normalised: str
) -> None:
    # Given a question as a user typed it
    # When it is normalised
    result = normalise_question(raw)

    # Then case, spacing, punctuation and letter widths are gone
    assert result == normalised


SCOPE = cache_scope("kb1", "classify-1,condense-2,answer-1", "bedrock:model-a")


def test_equivalent_wordings_share_a_key() -> None:
    # When two wordings of the same question are keyed, in English and in Spanish
    english_asked = cache_key("What do you sell?", "en", SCOPE)
    english_reworded = cache_key("  what do you SELL", "en", SCOPE)
    spanish_asked = cache_key("¿Qué vendéis?", "es", SCOPE)
    spanish_reworded = cache_key("qué vendéis", "es", SCOPE)

    # Then each pair shares one key
    assert english_asked == english_reworded
    assert spanish_asked == spanish_reworded


@pytest.mark.parametrize(
    "changed",
    [
        cache_scope("kb2", "classify-1,condense-2,answer-1", "bedrock:model-a"),  # re-ingest
        cache_scope("kb1", "classify-1,condense-2,answer-2", "bedrock:model-a"),  # new prompt
        cache_scope("kb1", "classify-1,condense-2,answer-1", "bedrock:model-b"),  # new model
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(changed: str) -> None:
    # Given a scope with another knowledge base, prompt or model
    # When the same question is keyed in it and in the original scope
    key_in_changed = cache_key("What do you sell?", "en", changed)
    key_in_original = cache_key("What do you sell?", "en", SCOPE)

    # Then the keys differ
    assert key_in_changed != key_in_original


def test_the_same_words_in_another_language_have_another_key() -> None:
    # Given words that read the same in several languages ("Hotel?"), whose answer does not
    # When they are keyed in German and in English
    german = cache_key("Hotel?", "de", SCOPE)
    english = cache_key("Hotel?", "en", SCOPE)

    # Then the keys differ
    assert german != english


def test_different_questions_have_different_keys() -> None:
    # When two different questions are keyed
    sell = cache_key("What do you sell?", "en", SCOPE)
    rent = cache_key("What do you rent?", "en", SCOPE)

    # Then the keys differ
    assert sell != rent


def test_scope_parts_cannot_run_into_each_other() -> None:
    # When two scopes are made whose parts joined without a separator would read the same
    first = cache_scope("kb1", "p", "m")
    second = cache_scope("kb", "1p", "m")

    # Then the scopes differ
    assert first != second
