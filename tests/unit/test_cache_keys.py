import pytest

from concierge.cache_keys import cache_key, normalise_question


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


def test_equivalent_wordings_share_a_key() -> None:
    assert cache_key("What do you sell?", "kb1", "p1") == cache_key("what do you sell", "kb1", "p1")


def test_a_new_knowledge_base_or_prompt_version_changes_the_key() -> None:
    base = cache_key("What do you sell?", "kb1", "p1")
    assert cache_key("What do you sell?", "kb2", "p1") != base
    assert cache_key("What do you sell?", "kb1", "p2") != base


def test_different_questions_have_different_keys() -> None:
    assert cache_key("What do you sell?", "kb", "p") != cache_key("What do you rent?", "kb", "p")
