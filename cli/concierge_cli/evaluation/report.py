"""The eval's figures per variant, the thresholds they are held to, and the report: a table on
the terminal, a JSON document, one self-contained HTML page with every case side by side."""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from concierge_cli.evaluation.checks import CHECKS, Scored

JUDGED = ("correctness", "faithfulness")


@dataclass(frozen=True)
class Summary:
    variant: str
    cases: int
    passed: int
    # check -> mean score over the cases it applies to (None: it applied to none)
    means: dict[str, float | None]
    latency_p50_s: float
    latency_p95_s: float
    cost_per_1000_usd: float
    llm_calls_per_question: float
    errors: int


def summarise(results: Sequence[Scored]) -> list[Summary]:
    variants = list(dict.fromkeys(result.variant for result in results))
    summaries = []
    for variant in variants:
        mine = [result for result in results if result.variant == variant]
        means: dict[str, float | None] = {}
        for check in CHECKS:
            values = [r.scores[check] for r in mine if r.scores.get(check) is not None]
            means[check] = sum(v for v in values if v is not None) / len(values) if values else None
        for check in JUDGED:
            judged = [r.judged[check] for r in mine if check in r.judged]
            means[check] = sum(judged) / len(judged) if judged else None
        latencies = sorted(r.latency_s for r in mine)
        summaries.append(
            Summary(
                variant=variant,
                cases=len(mine),
                passed=sum(r.passed for r in mine),
                means=means,
                latency_p50_s=statistics.median(latencies),
                latency_p95_s=latencies[
                    min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)
                ],
                cost_per_1000_usd=1000 * sum(r.cost_usd for r in mine) / len(mine),
                llm_calls_per_question=sum(r.llm_calls for r in mine) / len(mine),
                errors=sum(bool(r.error) for r in mine),
            )
        )
    return summaries


def shortfalls(summaries: Sequence[Summary], thresholds: Mapping[str, float]) -> list[str]:
    """What falls under its threshold, per variant (empty: the gate passes). A judged check
    without a judge is not held to its threshold; an errored case always fails the gate."""
    found = []
    for summary in summaries:
        for check, minimum in thresholds.items():
            mean = summary.means.get(check)
            if mean is not None and mean < minimum:
                found.append(f"{summary.variant}: {check} {mean:.3f} < {minimum}")
        if summary.errors:
            found.append(f"{summary.variant}: {summary.errors} case(s) answered with an error")
    return found


def table(summaries: Sequence[Summary], thresholds: Mapping[str, float]) -> str:
    """The figures side by side, one column per variant, as Markdown."""
    header = ["", *(s.variant for s in summaries)]
    rows = [["cases passed (every check)", *(f"{s.passed}/{s.cases}" for s in summaries)]]
    for check in (*CHECKS, *JUDGED):
        if all(s.means.get(check) is None for s in summaries):
            continue
        minimum = thresholds.get(check)
        label = f"{check} (≥ {minimum})" if minimum is not None else check
        rows.append([label, *(_share(s.means.get(check)) for s in summaries)])
    rows += [
        [
            "latency p50 / p95 (s)",
            *(f"{s.latency_p50_s:.2f} / {s.latency_p95_s:.2f}" for s in summaries),
        ],
        ["model calls per question", *(f"{s.llm_calls_per_question:.2f}" for s in summaries)],
        ["cost per 1,000 questions (USD)", *(f"{s.cost_per_1000_usd:.4f}" for s in summaries)],
        ["errors", *(str(s.errors) for s in summaries)],
    ]
    align = ["---", *(["---:"] * len(summaries))]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in (header, align, *rows))


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def as_json(
    results: Sequence[Scored], summaries: Sequence[Summary], about: Mapping[str, Any]
) -> str:
    return json.dumps(
        {
            **about,
            "summary": [
                {
                    "variant": s.variant,
                    "cases": s.cases,
                    "passed": s.passed,
                    "scores": s.means,
                    "latency_p50_s": round(s.latency_p50_s, 4),
                    "latency_p95_s": round(s.latency_p95_s, 4),
                    "cost_per_1000_usd": round(s.cost_per_1000_usd, 6),
                    "llm_calls_per_question": round(s.llm_calls_per_question, 3),
                    "errors": s.errors,
                }
                for s in summaries
            ],
            "cases": [
                {
                    "id": r.case.id,
                    "variant": r.variant,
                    "kind": r.case.metadata.kind,
                    "category": r.case.metadata.category,
                    "language": r.case.metadata.language,
                    "passed": r.passed,
                    "scores": r.scores,
                    "judged": r.judged,
                    "reasons": r.reasons,
                    "cited": r.cited,
                    "answer": r.answer,
                    "latency_s": round(r.latency_s, 4),
                    "cost_usd": r.cost_usd,
                    "error": r.error,
                }
                for r in results
            ],
        },
        ensure_ascii=False,
        indent=1,
    )


def as_html(
    results: Sequence[Scored],
    summaries: Sequence[Summary],
    thresholds: Mapping[str, float],
    about: Mapping[str, Any],
) -> str:
    """One page, no external resources: the summary, then every case with each variant's
    answer and scores side by side."""
    e = html.escape
    variants = [s.variant for s in summaries]
    by_case: dict[str, dict[str, Scored]] = {}
    for result in results:
        by_case.setdefault(result.case.id, {})[result.variant] = result
    rows = []
    for case_id, answers in by_case.items():
        case = next(iter(answers.values())).case
        cells = []
        for variant in variants:
            found = answers.get(variant)
            if found is None:
                cells.append("<td></td>")
                continue
            result = found
            scores = " ".join(
                f'<span class="{"ok" if v is not None and v >= 1 else "bad" if v is not None else "na"}">'
                f"{e(k)} {'—' if v is None else f'{v:.2f}'}</span>"
                for k, v in {**result.scores, **result.judged}.items()
            )
            cells.append(
                f'<td class="{"pass" if result.passed else "fail"}"><div>{e(result.answer)}</div>'
                f'<div class="meta">{scores}<br>cites {e(", ".join(result.cited) or "nothing")} · '
                f"{result.latency_s:.2f} s · ${result.cost_usd:.5f}"
                f"{' · ' + e(result.error) if result.error else ''}</div></td>"
            )
        turns = "".join(f"<div class='turn'>{e(turn)}</div>" for turn in case.metadata.turns)
        rows.append(
            f"<tr><td><b>{e(case_id)}</b><br>{e(case.metadata.kind)} · {e(case.metadata.category)}"
            f" · {e(case.metadata.language)}{turns}<div class='q'>{e(case.vars.question)}</div>"
            f"<div class='meta'>expects {e(', '.join(case.metadata.sources) or 'no source')}; "
            f"facts {e(', '.join(case.metadata.facts) or '—')}; refusal {e(case.metadata.refusal)}"
            f"</div></td>{''.join(cells)}</tr>"
        )
    summary = "".join(
        f"<tr><th>{e(line.split('|')[1].strip())}</th>"
        + "".join(f"<td>{e(cell.strip())}</td>" for cell in line.split("|")[2:-1])
        + "</tr>"
        for line in table(summaries, thresholds).splitlines()[2:]
    )
    heads = "".join(f"<th>{e(v)}</th>" for v in variants)
    facts = " · ".join(f"{e(str(k))}: {e(str(v))}" for k, v in about.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Concierge eval</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}}
.pass{{background:#f2fbf2}} .fail{{background:#fdf0f0}} .meta{{color:#555;font-size:12px;margin-top:.3em}}
.ok{{color:#17701d}} .bad{{color:#b00020;font-weight:600}} .na{{color:#999}} .q{{margin-top:.3em}}
.turn{{color:#555;font-style:italic}}
</style></head><body>
<h1>Concierge eval</h1><p class="meta">{facts}</p>
<table><tr><th></th>{heads}</tr>{summary}</table>
<h2>Cases</h2>
<table><tr><th>case</th>{heads}</tr>{"".join(rows)}</table>
</body></html>
"""
