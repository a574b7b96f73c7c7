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
