"""The eval's scoring: each check on a response, the summary per variant, the thresholds, the
judge's reply, and the case files' validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from concierge.prompt_library import load_prompt
from concierge_cli.evaluation.cases import Case, CaseError, load_cases
from concierge_cli.evaluation.checks import score
from concierge_cli.evaluation.judge import parse_verdict
from concierge_cli.evaluation.report import as_html, shortfalls, summarise


def _case(**metadata: Any) -> Case:
    base = {
        "id": "en-test-001",
        "category": "pricing",
        "language": "en",
        "kind": "answerable",
        "sources": ["en-price-list.md"],
        "facts": ["299", "Cirrus 2"],
    }
    return Case.model_validate(
        {"description": "d", "vars": {"question": "How much?"}, "metadata": {**base, **metadata}}
    )


def _body(answer: str, sources: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "answer": answer,
        "citations": [{"source": s, "title": "t", "snippet": "s"} for s in sources],
        "language": "en",
        "usage": {"llm_calls": 2, "cost_usd": 0.001},
        **extra,
    }


def test_a_right_answer_passes_every_check() -> None:
    # Given a response citing the expected source with both facts, in English
    body = _body("The Cirrus 2 costs 299 euros. [1]", ["en-price-list.md"])

    # When it is scored
    scored = score(_case(), "default", 200, body, 0.2)

    # Then every check holds
    assert scored.passed
    assert scored.scores == {
        "citation_recall": 1.0,
        "facts": 1.0,
        "language": 1.0,
        "refusal": 1.0,
        "guardrail": 1.0,
    }


def test_a_wrong_answer_fails_what_it_gets_wrong() -> None:
    # Given a response citing another document, with one of two facts
    body = _body("The Cirrus 2 is a tent. [1]", ["en-tents.md"])

    # When it is scored
    scored = score(_case(), "default", 200, body, 0.2)

    # Then citation recall and facts say so, the rest holds
    assert (scored.scores["citation_recall"], scored.scores["facts"]) == (0.0, 0.5)
    assert not scored.passed


def test_refusals_are_right_only_where_they_are_expected() -> None:
    # Given the no-answer message, and the screen's refusal
    not_found = load_prompt("answer").no_answer["en"]
    blocked = {"action": "blocked", "source": "input", "reasons": ["instruction_override"]}

    # When they answer an unanswerable case, an attack and an answerable case
    unanswerable = _case(kind="unanswerable", refusal="not_found", sources=[], facts=[])
    attack = _case(kind="adversarial", refusal="blocked", sources=[], facts=[])
    right_not_found = score(unanswerable, "v", 200, _body(not_found, []), 0.1)
    right_block = score(attack, "v", 200, _body("No.", [], guardrail=blocked), 0.1)
    wrong_refusal = score(_case(), "v", 200, _body(not_found, []), 0.1)

    # Then each is scored by whether it should have refused
    assert right_not_found.passed and right_block.passed
    assert wrong_refusal.scores["refusal"] == 0.0


def test_an_error_response_fails_the_case_and_the_gate() -> None:
    # Given a 503
    scored = score(_case(), "v", 503, {"error": {"code": "model_unavailable"}}, 1.0)

    # When the run is summarised and held to its thresholds
    summaries = summarise([scored])

    # Then the case fails, and the gate names the error
    assert not scored.passed and scored.error == "HTTP 503 model_unavailable"
    assert any("error" in line for line in shortfalls(summaries, {"facts": 0.5}))


def test_thresholds_name_each_variant_that_falls_under_them() -> None:
    # Given two variants, one right and one wrong
    right = score(_case(), "a", 200, _body("Cirrus 2: 299. [1]", ["en-price-list.md"]), 0.1)
    wrong = score(_case(), "b", 200, _body("No idea. [1]", ["en-tents.md"]), 0.1)

    # When they are summarised and held to thresholds
    summaries = summarise([right, wrong])
    failing = shortfalls(summaries, {"citation_recall": 0.5, "facts": 0.5})

    # Then only the wrong variant is named, once per check it misses; the report shows both
    assert failing == ["b: citation_recall 0.000 < 0.5", "b: facts 0.000 < 0.5"]
    page = as_html([right, wrong], summaries, {"facts": 0.5}, {"when": "now"})
    assert page.startswith("<!doctype html>") and "en-test-001" in page


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 0.8, "reason": "mostly right"}', (0.8, "mostly right")),
        ('Sure. {"score": 3, "reason": "x"}', (1.0, "x")),
        ("no json here", (0.0, "the judge's reply was not the JSON asked for")),
    ],
)
def test_the_judges_reply_is_read_safely(reply: str, expected: tuple[float, str]) -> None:
    # Given a judge's reply
    # When it is read
    verdict = parse_verdict(reply)

    # Then its score is clamped to 0..1, and an unreadable reply scores 0 and says why
    assert (verdict.score, verdict.reason) == expected


def test_a_case_file_with_a_mistake_is_refused_with_its_place(tmp_path: Path) -> None:
    # Given a case file whose second case has a kind that does not exist
    (tmp_path / "cases.yaml").write_text(
        "- description: a\n  vars: {question: q}\n  metadata: {id: en-a-1, category: c, "
        "language: en, kind: answerable}\n"
        "- description: b\n  vars: {question: q}\n  metadata: {id: en-b-1, category: c, "
        "language: en, kind: guess}\n",
        encoding="utf-8",
    )

    # When the cases are loaded
    # Then the error names the file and the case
    with pytest.raises(CaseError, match=r"cases.yaml, case 2"):
        load_cases([tmp_path])
