"""The eval's offline gate: the cases marked `gate: true` (eval/cases), asked of the chain in
this process with the offline models, must meet eval/config.toml's [gate] thresholds — a
regression anywhere in the chain (retrieval, prompts, checks, safety) fails `make test` here.
`make eval` runs every case."""

from __future__ import annotations

from pathlib import Path

import pytest

from concierge_cli.evaluation.cases import load_cases
from concierge_cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_gate_cases_meet_the_gate_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the gate subset of the eval cases
    gated = [case for case in load_cases([REPO_ROOT / "eval" / "cases"]) if case.metadata.gate]
    assert len(gated) >= 40

    # When `concierge eval --gate` asks them of the local chain, for the default variant
    status = main(
        [
            "--root",
            str(REPO_ROOT),
            "eval",
            "--gate",
            "--variant",
            "default",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )

    # Then every threshold holds (the table says which did not), and the report is written
    output = capsys.readouterr()
    assert status == 0, output.out + output.err
    assert (tmp_path / "report.html").is_file() and (tmp_path / "results.json").is_file()


def test_every_case_file_is_valid_and_covers_the_set(tmp_path: Path) -> None:
    # Given the eval cases
    # When they are loaded (each entry validated, ids unique)
    cases = load_cases([REPO_ROOT / "eval" / "cases"])

    # Then they cover every category in en, es and de, follow-ups, unanswerable and adversarial
    # questions
    kinds = {case.metadata.kind for case in cases}
    covered = {(case.metadata.category, case.metadata.language) for case in cases}
    assert len(cases) >= 80
    assert kinds == {"answerable", "follow_up", "unanswerable", "adversarial"}
    for category in ("products", "pricing", "policies", "support", "company"):
        for language in ("en", "es", "de"):
            assert (category, language) in covered, (category, language)


def test_a_judge_model_grades_each_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one case file with two cases, and an OpenAI-compatible judge that grades twice
    # per case (correctness, then faithfulness)
    import json

    from fake_openai import FakeOpenAIServer, completion

    cases = [case for case in load_cases([REPO_ROOT / "eval" / "cases"]) if case.metadata.gate]
    (tmp_path / "two.yaml").write_text(
        json.dumps([case.model_dump() for case in cases[:2]]), encoding="utf-8"
    )
    with FakeOpenAIServer() as judge:
        for score in (0.9, 0.7, 1.0, 0.5):
            judge.reply(200, completion(json.dumps({"score": score, "reason": "graded"})))
        monkeypatch.setenv("CONCIERGE_OPENAI_BASE_URL", judge.base_url)

        # When the eval runs them with the judge
        status = main(
            [
                "--root",
                str(REPO_ROOT),
                "eval",
                "--cases",
                str(tmp_path / "two.yaml"),
                "--variant",
                "default",
                "--judge",
                "openai:judge-model",
                "--quiet",
                "--thresholds",
                "gate",
                "--out",
                str(tmp_path / "out"),
            ]
        )

    # Then the judge read the judge prompts with each question and answer, and the report
    # carries its scores and versions
    output = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    systems = [request.json()["messages"][0]["content"] for request in judge.requests]
    assert status == 0
    assert len(judge.requests) == 4 and "grade the answers" in systems[0]
    assert [case["judged"] for case in report["cases"]] == [
        {"correctness": 0.9, "faithfulness": 0.7},
        {"correctness": 1.0, "faithfulness": 0.5},
    ]
    assert "judge_correctness-1" in report["judge"] and "| correctness | 95.0% |" in output
