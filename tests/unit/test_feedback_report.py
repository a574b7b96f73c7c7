"""`concierge feedback report`'s figures: the Wilson interval and the tests of a difference
against published values, and the report of a set of ratings (per variant, against the most
rated one, then by language and category), as text and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from concierge.adapters.dynamodb.feedback import AnsweredTurn, Rating
from concierge_cli.feedback import render, report
from concierge_cli.main import main
from concierge_cli.proportions import (
    compare,
    fisher_exact,
    two_proportion_z_test,
    wilson_interval,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- the statistics ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Wilson (1927) as tabulated by Newcombe (1998), Statistics in Medicine 17, table I.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # Symmetric around a half; all successes reach 1 exactly.
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_the_wilson_interval_matches_published_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    # When the 95% Wilson interval of a proportion is computed
    computed = wilson_interval(successes, trials)

    # Then it is the published one, to four decimals, and never leaves [0, 1]
    assert computed == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))
    assert 0.0 <= computed[0] <= successes / trials <= computed[1] <= 1.0


@pytest.mark.parametrize(
    ("table", "p_value"),
    [
        # Fisher's lady tasting tea: 3 of 4 cups right.
        ((3, 1, 1, 3), 0.4857),
        # SciPy's documented example of fisher_exact.
        ((8, 2, 1, 5), 0.03497),
        # Wikipedia's example (studying: men 1/10, women 9/12).
        ((1, 9, 11, 3), 0.002759),
        # Nothing to tell apart.
        ((5, 5, 5, 5), 1.0),
    ],
)
def test_fishers_exact_test_matches_published_values(
    table: tuple[int, int, int, int], p_value: float
) -> None:
    # When the two-sided p-value of a 2x2 table is computed
    computed = fisher_exact(*table)

    # Then it is the published one
    assert computed == pytest.approx(p_value, rel=1e-3)


def test_the_z_test_matches_a_computation_by_hand() -> None:
    # Given 45 of 100 against 60 of 100: pooled 0.525, standard error
    # sqrt(0.525 * 0.475 * (1/100 + 1/100)) = 0.070622, z = -0.15 / 0.070622 = -2.1240
    # When the two-sided p-value of the pooled z-test is computed
    p_value = two_proportion_z_test(45, 100, 60, 100)

    # Then it is 2 * (1 - Phi(2.1240)) = 0.03367
    assert p_value == pytest.approx(0.03367, abs=2e-5)
    # And the test is symmetric, and sees no difference where everyone agrees
    assert two_proportion_z_test(60, 100, 45, 100) == pytest.approx(p_value)
    assert two_proportion_z_test(10, 10, 20, 20) == 1.0


@pytest.mark.parametrize(
    ("counts", "test", "significant"),
    [
        ((45, 100, 60, 100), "z", True),
        ((50, 100, 55, 100), "z", False),
        ((8, 10, 1, 6), "fisher", True),  # an expected count under 5
        ((3, 4, 1, 4), "fisher", False),
    ],
)
def test_small_counts_are_compared_exactly_and_large_ones_with_the_z_test(
    counts: tuple[int, int, int, int], test: str, significant: bool
) -> None:
    # When two shares of ups are compared
    comparison = compare(*counts)

    # Then Fisher's test is used when a cell's expected count is under 5, and p < 0.05 decides
    assert comparison.test == test
    assert comparison.significant is significant


def test_impossible_counts_are_refused() -> None:
    # When / Then more successes than trials, or negative cells, are a programming error
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)
    with pytest.raises(ValueError, match="counts"):
        fisher_exact(-1, 2, 3, 4)


# -- the report ----------------------------------------------------------------------------------
def _ratings(variant: str, language: str, category: str, ups: int, downs: int) -> list[Rating]:
    turn = AnsweredTurn(
        request_id="r",
        session_id="s",
        variant=variant,
        prompt_versions="classify-3,condense-3,answer-2",
        answer_model="offline",
        category=category,
        language=language,
    )
    return [
        Rating(
            user_id="u",
            turn=turn,
            rating="up" if n < ups else "down",
            comment=None,
            created_at=0,
            expires_at=0,
        )
        for n in range(ups + downs)
    ]


RATINGS = [
    *_ratings("default", "en", "products", 40, 10),
    *_ratings("default", "de", "support", 20, 30),
    *_ratings("concise", "en", "products", 20, 20),
    *_ratings("friendly", "es", "pricing", 3, 1),
]


def test_the_report_compares_each_variant_with_the_most_rated_one() -> None:
    # When the report of 100 ratings of `default`, 40 of `concise` and 4 of `friendly` is made
    document = report(RATINGS, table="feedback", since="2026-11-01")

    # Then `default` (60 ups of 100) is the baseline, and each variant has its figures
    assert (document["ratings"], document["baseline"], document["since"]) == (
        144,
        "default",
        "2026-11-01",
    )
    rows = {row["variant"]: row for row in document["variants"]}
    assert [row["variant"] for row in document["variants"]] == ["default", "concise", "friendly"]
    assert rows["default"] == {
        "variant": "default",
        "ratings": 100,
        "up": 60,
        "down": 40,
        "share_up": 0.6,
        "interval_95": [0.5020, 0.6906],
        "compared_with": None,
        "test": None,
        "p_value": None,
        "significant": False,
    }
    # And 20 of 40 is not significantly below 60 of 100 (z-test), nor is 3 of 4 above it (Fisher)
    concise, friendly = rows["concise"], rows["friendly"]
    assert (concise["compared_with"], concise["test"], concise["significant"]) == (
        "default",
        "z",
        False,
    )
    assert concise["p_value"] == pytest.approx(two_proportion_z_test(20, 40, 60, 100), rel=1e-3)
    assert (friendly["test"], friendly["significant"]) == ("fisher", False)
    # And the second table splits each variant by language and by category
    assert [
        (r["variant"], r["language"], r["ratings"], r["up"]) for r in document["by_language"]
    ] == [
        ("default", "de", 50, 20),
        ("default", "en", 50, 40),
        ("concise", "en", 40, 20),
        ("friendly", "es", 4, 3),
    ]
    assert [(r["variant"], r["category"]) for r in document["by_category"]] == [
        ("default", "products"),
        ("default", "support"),
        ("concise", "products"),
        ("friendly", "pricing"),
    ]


def test_a_clear_difference_is_reported_significant() -> None:
    # Given a variant with 20 ups of 50 against a baseline of 80 of 100
    ratings = [
        *_ratings("default", "en", "products", 80, 20),
        *_ratings("b", "en", "products", 20, 30),
    ]

    # When the report is made
    rows = {row["variant"]: row for row in report(ratings, table="t")["variants"]}

    # Then the difference is significant
    assert rows["b"]["significant"] is True
    assert rows["b"]["p_value"] < 0.001


def test_the_text_report_shows_both_tables_and_the_verdicts() -> None:
    # When the report is rendered as text
    text = render(report(RATINGS, table="concierge-dev-FeedbackTable", since=None))

    # Then it names the table and the count, then one line per variant with its share, interval
    # and verdict against the baseline, then one per variant and language or category
    lines = text.splitlines()
    assert lines[0] == "Feedback in concierge-dev-FeedbackTable: 144 ratings"
    header = lines[2].split()
    assert header[:3] == ["variant", "ratings", "up"]
    assert "vs default" in lines[2]
    default = next(line for line in lines if line.startswith("default "))
    assert "60.0%" in default and "[50.2%, 69.1%]" in default and "baseline" in default
    concise = next(line for line in lines if line.startswith("concise "))
    assert "(z-test), not significant" in concise
    friendly = next(line for line in lines if line.startswith("friendly "))
    assert "(Fisher), not significant" in friendly
    assert any(line.split()[:2] == ["default", "language=de"] for line in lines)
    assert any(line.split()[:2] == ["friendly", "category=pricing"] for line in lines)


def test_a_report_without_ratings_says_so() -> None:
    # When there is nothing to report
    document = report([], table="t")

    # Then the figures are empty, and the text says there are no ratings
    assert (document["ratings"], document["baseline"], document["variants"]) == (0, None, [])
    assert render(document) == "Feedback in t: 0 ratings"


def test_the_json_document_is_plain_json() -> None:
    # When the report is serialised as `--json` prints it
    text = json.dumps(report(RATINGS, table="t"))

    # Then it reads back with the same figures
    document: dict[str, Any] = json.loads(text)
    assert set(document) == {
        "table",
        "since",
        "ratings",
        "baseline",
        "variants",
        "by_language",
        "by_category",
    }


# -- usage ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "dev", "--feedback-table", "t"], "not both"),
        (["--env", "qa"], "no stack for it (environments: dev, prod, staging)"),
        (["--env", "default"], "no stack for it"),
    ],
)
def test_bad_sources_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the report is asked of two sources, or of an environment samconfig.toml lacks
    code = main(["--root", str(REPO_ROOT), "feedback", "report", *argv])

    # Then it is a usage error saying why
    assert code == 2
    assert message in capsys.readouterr().err


def test_since_must_be_a_day(capsys: pytest.CaptureFixture[str]) -> None:
    # When --since is not a day
    with pytest.raises(SystemExit) as exited:
        main(["feedback", "report", "--since", "last week"])

    # Then the parser refuses it
    assert exited.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
