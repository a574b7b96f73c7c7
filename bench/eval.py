"""The answer-quality eval as the make targets run it: `make eval` (every case, every variant of
eval/config.toml, offline, in one process) and the gate subset `make test` runs, each timed as
a whole `concierge eval` process; and the quality of each variant next to its cost per 1,000
questions, the offline model's estimated tokens priced at a real model's rates."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import goals, reproduce, table
from bench.local_server import concierge

TITLE = "Answer-quality eval: time of make eval and of the gate, quality and cost per variant"
GOAL_FULL_S, GOAL_GATE_S = 180.0, 60.0
# What the offline model's estimated tokens are priced at, so prompt variants differ in cost.
PRICED_AS = "bedrock:anthropic.claude-3-haiku-20240307-v1:0"
PRICES = {"offline": {"input": 0.00025, "output": 0.00125}}
SHOWN = ("citation_recall", "facts", "language", "refusal", "guardrail")


@dataclass
class EvalResult:
    full_seconds: float = 0.0
    gate_seconds: float = 0.0
    full: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the eval's own config says what runs."""


def _run(root: Path, out: Path, *argv: str) -> tuple[float, dict[str, Any], str]:
    started = time.perf_counter()
    done = concierge(
        root,
        "eval",
        "--quiet",
        "--out",
        str(out),
        *argv,
        extra={"CONCIERGE_MODEL_PRICES": json.dumps(PRICES)},
    )
    seconds = time.perf_counter() - started
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    problem = (
        "" if done.returncode == 0 else f"concierge eval {' '.join(argv)} exited {done.returncode}"
    )
    return seconds, report, problem


def run(args: argparse.Namespace, root: Path, log: TextIO) -> EvalResult:
    result = EvalResult()
    with tempfile.TemporaryDirectory(prefix="concierge-bench-eval-") as work:
        print("eval: the full set, every variant", file=log)
        result.full_seconds, result.full, problem = _run(root, Path(work) / "full")
        result.errors += [problem] if problem else []
        print("eval: the gate subset", file=log)
        result.gate_seconds, result.gate, problem = _run(
            root, Path(work) / "gate", "--gate", "--variant", "default"
        )
        result.errors += [problem] if problem else []
    return result


def _rows(report: dict[str, Any]) -> list[list[str]]:
    summaries = report["summary"]
    rows = [["cases passed (every check)", *(f"{s['passed']}/{s['cases']}" for s in summaries)]]
    for check in SHOWN:
        rows.append(
            [
                check,
                *(
                    "—" if s["scores"][check] is None else f"{s['scores'][check]:.1%}"
                    for s in summaries
                ),
            ]
        )
    rows.append(
        ["model calls per question", *(f"{s['llm_calls_per_question']:.2f}" for s in summaries)]
    )
    rows.append(
        [
            f"cost per 1,000 questions (USD, at {PRICED_AS.split(':')[1]} rates)",
            *(f"{s['cost_per_1000_usd']:.4f}" for s in summaries),
        ]
    )
    rows.append(["latency p50 (s)", *(f"{s['latency_p50_s']:.3f}" for s in summaries)])
    return rows


def render(result: EvalResult) -> str:
    variants = [s["variant"] for s in result.full["summary"]]
    return "\n".join(
        [
            reproduce(TITLE, "eval"),
            "",
            goals(
                (
                    "`make eval` offline, the full set",
                    f"≤ {GOAL_FULL_S:.0f} s",
                    f"{result.full_seconds:.1f} s",
                    result.full_seconds <= GOAL_FULL_S,
                ),
                (
                    "the gate subset inside `make test`",
                    f"≤ {GOAL_GATE_S:.0f} s",
                    f"{result.gate_seconds:.1f} s",
                    result.gate_seconds <= GOAL_GATE_S,
                ),
            ),
            "",
            f"### The full set ({result.full['case_count']} cases, {len(variants)} variants, offline)",
            "",
            table(["", *variants], _rows(result.full)),
            "",
            f"### The gate ({result.gate['case_count']} cases, `default`): {result.gate['gate']}",
            "",
            *(f"- {error}" for error in result.errors),
        ]
    )
