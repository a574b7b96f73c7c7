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
    assert normalise_question(raw) == normalised


SCOPE = cache_scope("kb1", "classify-1,condense-2,answer-1", "bedrock:model-a")


def test_equivalent_wordings_share_a_key() -> None:
    assert cache_key("What do you sell?", "en", SCOPE) == cache_key(
        "  what do you SELL", "en", SCOPE
    )
    assert cache_key("¿Qué vendéis?", "es", SCOPE) == cache_key("qué vendéis", "es", SCOPE)


@pytest.mark.parametrize(
    "changed",
    [
        cache_scope("kb2", "classify-1,condense-2,answer-1", "bedrock:model-a"),  # re-ingest
        cache_scope("kb1", "classify-1,condense-2,answer-2", "bedrock:model-a"),  # new prompt
        cache_scope("kb1", "classify-1,condense-2,answer-1", "bedrock:model-b"),  # new model
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(changed: str) -> None:
    assert cache_key("What do you sell?", "en", changed) != cache_key(
        "What do you sell?", "en", SCOPE
    )


def test_the_same_words_in_another_language_have_another_key() -> None:
    # "Hotel?" reads the same in several languages; its answer does not.
    assert cache_key("Hotel?", "de", SCOPE) != cache_key("Hotel?", "en", SCOPE)


def test_different_questions_have_different_keys() -> None:
    assert cache_key("What do you sell?", "en", SCOPE) != cache_key(
        "What do you rent?", "en", SCOPE
    )


def test_scope_parts_cannot_run_into_each_other() -> None:
    assert cache_scope("kb1", "p", "m") != cache_scope("kb", "1p", "m")
