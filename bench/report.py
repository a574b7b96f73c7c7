"""The Markdown report: header, latency tables, import tables."""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import imports, latency, retrieval, semantic
from bench.stats import ratio

COMMAND = "make bench"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column, `l` or `r` (default: r after the first)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if letter == "r" else "---" for letter in align]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def ms(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def times(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(started: datetime, total_seconds: float) -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return "\n".join(
        [
            "# Concierge benchmarks",
            "",
            f"- Date: {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: `{platform.platform()}`, {_cpu_model()}, {os.cpu_count()} logical CPUs",
            f"- Python: {python} (`{Path(sys.executable).name}` from the project's `.venv`)",
            f"- Command: `{COMMAND}` (runs `.venv/bin/python -m bench.run` from the repository root)",
            f"- Whole run: {total_seconds:.0f} s",
            "",
            "> Figures are from **one run on a shared, noisy machine**. Absolute milliseconds move",
            "> between runs and machines; the **ratios** (hit/miss, handler/deps) are the meaningful part.",
        ]
    )


_LABELS = {
    latency.MISS: "miss (first turn, new question)",
    latency.FOLLOW_UP: "follow-up (2nd turn: one condense-and-classify call)",
    latency.HIT: "hit (same question again, `cached: true`)",
}


def _latency_rows(result: latency.LatencyResult, execution: bool) -> list[list[str]]:
    rows = []
    for kind in latency.KINDS:
        summary = result.execution_summary(kind) if execution else result.summary(kind)
        rows.append(
            [
                _LABELS[kind],
                str(summary.n),
                ms(summary.p50_ms),
                ms(summary.p95_ms),
                ms(summary.mean_ms),
                ms(summary.min_ms),
                ms(summary.max_ms),
                f"{result.mean_model_calls(kind):.1f}",
            ]
        )
    return rows


def latency_section(result: latency.LatencyResult) -> str:
    miss, follow, hit = (result.summary(kind) for kind in latency.KINDS)
    miss_x, follow_x, hit_x = (result.execution_summary(kind) for kind in latency.KINDS)
    hit_ratio = ratio(hit.p50_ms, miss.p50_ms)
    headers = ["request", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "min (ms)", "max (ms)"]
    headers.append("model calls")
    return "\n".join(
        [
            "## 1. Local full-chain latency (offline models) vs cache hit",
            "",
            f"One `LocalRuntime` over the sample index ({result.index_chunks} chunks, built in "
            f"{result.index_seconds * 1000:.0f} ms; runtime start {result.startup_seconds:.2f} s), "
            f"{result.warm_up_requests} warm-up requests (questions written for the benchmark), "
            f"then {result.questions} distinct first-turn questions from "
            "`knowledge/sample/qa.jsonl`. Each is asked once (miss), again in a new session (hit, "
            "`cached: true` checked), and followed up in its first session (follow-up). The three "
            "kinds are pipelined and their order rotated, so noise falls on all of them. Timed "
            "with `time.perf_counter()` around `runtime.api(event)`.",
            *_ungrounded_note(result),
            "",
            "### End to end (`runtime.api(event)`, what a client of the local API sees)",
            "",
            table(headers, _latency_rows(result, execution=False)),
            "",
            f"- **hit / miss p50 = {hit_ratio:.2f}** (a cache hit takes {hit_ratio:.0%} of a "
            f"miss's time; {ratio(1, hit_ratio):.2f}x faster)",
            f"- follow-up / miss p50 = {ratio(follow.p50_ms, miss.p50_ms):.2f}",
            "",
            "### Inside the emulator (the execution's own startDate to stopDate)",
            "",
            "The local `api` function starts the execution and polls DescribeExecution with a "
            "5 ms sleep growing 1.5x per poll up to 10 ms, so the end-to-end figures above carry "
            "up to about 10 ms of polling on top of the execution. The emulator's own "
            "timestamps (1 ms resolution, read after each request, outside the timing) show the "
            "chain without the polling:",
            "",
            table(headers, _latency_rows(result, execution=True)),
            "",
            f"- **hit / miss p50 = {ratio(hit_x.p50_ms, miss_x.p50_ms):.2f}** inside the emulator",
            f"- follow-up / miss p50 = {ratio(follow_x.p50_ms, miss_x.p50_ms):.2f}",
            f"- polling and API overhead at p50: miss {ms(miss.p50_ms - miss_x.p50_ms)} ms, "
            f"follow-up {ms(follow.p50_ms - follow_x.p50_ms)} ms, "
            f"hit {ms(hit.p50_ms - hit_x.p50_ms)} ms",
            "",
            "What the numbers contain: moto's Step Functions emulator interpreting "
            "`statemachine/chat.asl.json`, the real handlers called in-process, DynamoDB in "
            "memory, and the `offline` model, which costs almost nothing. So a miss here is "
            "emulator and handler overhead plus BM25 retrieval, not model time; against Bedrock a "
            "miss is dominated by the model and a hit is far cheaper in proportion. A hit is "
            "still not free locally: moto builds a new boto3 client for every task state, "
            "DynamoDB and Lambda alike (the local runtime already parses the definition once "
            "instead of per execution), so the fixed cost of an execution weighs on both paths.",
        ]
    )


def _ungrounded_note(result: latency.LatencyResult) -> list[str]:
    if not result.ungrounded:
        return []
    quoted = "; ".join(f"“{text}”" for text in result.ungrounded)
    return [
        "",
        f"Set aside: {len(result.ungrounded)} of the {result.candidates} questions got an "
        f"ungrounded answer (no citations) from the offline model, which by design is not "
        f"cached, so they cannot hit: {quoted}.",
    ]


def _import_rows(result: imports.ImportResult, environment: str) -> list[list[str]]:
    measured = result.measured[environment]
    deps = measured[imports.DEPS].median_ms
    deps_init = measured[imports.DEPS_INIT].median_ms
    flagged = result.flagged()
    rows = []
    for step in imports.STEPS:
        entry = measured[step]
        bad = [name for name in entry.loaded if name in imports.MUST_NOT_LOAD]
        rows.append(
            [
                f"`functions/{step}/app.py`",
                str(len(entry.seconds)),
                ms(entry.median_ms),
                ms(entry.min_ms),
                ms(entry.median_ms - deps),
                times(ratio(entry.median_ms, deps)),
                ms(entry.median_ms - deps_init),
                str(entry.modules),
                ", ".join(f"`{name}`" for name in entry.loaded if name not in imports.MUST_NOT_LOAD)
                or "-",
                ("**BUG: " + ", ".join(bad) + "**")
                if bad
                else ("ok" if step not in flagged else "see other env"),
            ]
        )
    return rows


def imports_section(result: imports.ImportResult) -> str:
    headers = [
        "handler",
        "n",
        "median (ms)",
        "min (ms)",
        "handler - deps (ms)",
        "handler / deps",
        "handler - deps+instances (ms)",
        "modules",
        "heavy modules loaded",
        "moto / yaml / concierge_cli.local",
    ]
    baseline_rows = []
    for name in imports.BASELINES:
        plain = result.measured[imports.PLAIN][name]
        in_lambda = result.measured[imports.IN_LAMBDA][name]
        baseline_rows.append(
            [
                name,
                str(len(plain.seconds)),
                ms(plain.median_ms),
                ms(in_lambda.median_ms),
                str(plain.modules),
                ", ".join(f"`{n}`" for n in plain.loaded) or "-",
            ]
        )
    flagged = result.flagged()
    if flagged:
        verdict = "**BUG** — a Lambda handler imports the offline stack: " + "; ".join(
            f"`{step}` loads {', '.join(f'`{n}`' for n in names)}"
            for step, names in flagged.items()
        )
    else:
        verdict = "no handler pulls in `moto`, `yaml` or `concierge_cli.local` at import."
    loaded = {
        environment: {
            name for step in imports.STEPS for name in result.measured[environment][step].loaded
        }
        for environment in imports.ENVIRONMENTS
    }
    states = []
    for name in ("boto3", "botocore", "aws_xray_sdk", "requests"):
        where = [environment for environment in imports.ENVIRONMENTS if name in loaded[environment]]
        if not where:
            state = "not loaded"
        elif len(where) == len(imports.ENVIRONMENTS):
            state = "loaded"
        else:
            state = "loaded only in the " + " and ".join(where) + " environment"
        states.append(f"`{name}` {state}")
    verdict += " Other heavy packages after a handler import: " + "; ".join(states) + "."
    parts = [
        "## 2. Handler cold import vs bare dependencies",
        "",
        f"Each figure is the median of {result.runs} fresh interpreters (`python -c`), timing only "
        "the import with `time.perf_counter()`: the handler loaded from `functions/<step>/app.py` "
        "as module `app` with its folder first on `sys.path`, or the bare dependencies "
        "(`import boto3, pydantic` + `from aws_lambda_powertools import Logger, Metrics, Tracer`). "
        "Runs are interleaved round by round after one discarded run per target (bytecode and OS "
        "file cache warm — a real Lambda cold start also pays for reading the package from disk). "
        "`handler - deps` subtracts the bare-import median; `handler - deps+instances` subtracts the "
        "baseline that also creates `Logger()`, `Metrics()` and `Tracer()`, as "
        "`concierge.observability` does.",
        "",
        "### Plain environment (`POWERTOOLS_SERVICE_NAME=concierge`, `AWS_DEFAULT_REGION=us-east-1`)",
        "",
        table(headers, _import_rows(result, imports.PLAIN), "lrrrrrrrll"),
        "",
        "### In-Lambda environment (the same plus `LAMBDA_TASK_ROOT`)",
        "",
        "With `LAMBDA_TASK_ROOT` set, Powertools enables the Tracer (and auto-patches libraries) "
        "and the X-Ray SDK uses its local sampler instead of building X-Ray clients for "
        "centralised sampling — this is what a deployed function does at import. (The X-Ray SDK "
        "touches `/tmp/.aws-xray/initialized` in this mode.)",
        "",
        table(headers, _import_rows(result, imports.IN_LAMBDA), "lrrrrrrrll"),
        "",
        "### Baselines",
        "",
        table(
            ["baseline", "n", "plain median (ms)", "in-Lambda median (ms)", "modules", "loaded"],
            baseline_rows,
            "lrrrrl",
        ),
        "",
        f"Offline stack in handlers: {verdict}",
        "",
        _attribution(result),
    ]
    return "\n".join(parts)


def _attribution(result: imports.ImportResult) -> str:
    steps = [step for step in imports.STEPS if step in result.attribution]
    if not steps:
        return ""
    totals: dict[str, float] = {}
    for step in steps:
        for package, value in result.attribution[step].items():
            totals[package] = totals.get(package, 0.0) + value
    top = sorted(totals, key=lambda name: -totals[name])[:10]
    rows = [
        [f"`{package}`", *(ms(result.attribution[step].get(package, 0.0)) for step in steps)]
        for package in top
    ]
    rows.append(
        ["**all packages**", *(ms(sum(result.attribution[step].values())) for step in steps)]
    )
    return "\n".join(
        [
            "### Where the import time goes",
            "",
            "Self time summed by top-level package from one `python -X importtime` run per handler "
            "(plain environment; importtime inflates totals, read the shares). Module-level work "
            "counts as its module's self time — e.g. `aws_xray_sdk.core` creating its global "
            "recorder, whose default sampler builds botocore X-Ray clients (loading endpoint and "
            "service JSON) at import.",
            "",
            table(["package", *steps], rows),
        ]
    )


def _score_cells(scores: retrieval.Scores) -> list[str]:
    return [f"{scores.recall_at_1:.2f}", f"{scores.recall_at_5:.2f}", f"{scores.mrr:.2f}"]


def _verdict(passed: bool) -> str:
    return "**PASS**" if passed else "**FAIL**"


def retrieval_section(result: retrieval.RetrievalResult) -> str:
    chain, bare = retrieval.CHAIN, retrieval.NO_FILTER
    groups: list[tuple[str, str | None, str | None]] = [("all questions", None, None)]
    groups += [(f"language `{lang}`", None, lang) for lang in retrieval.LANGUAGES]
    groups += [(f"kind `{kind}`", kind, None) for kind in retrieval.KINDS]
    rows = []
    for label, kind, language in groups:
        filtered = result.scores(chain, kind=kind, language=language)
        unfiltered = result.scores(bare, kind=kind, language=language)
        rows.append([label, str(filtered.n), *_score_cells(filtered), *_score_cells(unfiltered)])
    overall = result.scores(chain)
    overall_bare = result.scores(bare)
    speed = {mode: result.query_summary(mode) for mode in retrieval.MODES}
    speed_rows = [
        [
            f"`{mode}`",
            str(summary.n),
            ms(summary.p50_ms, 2),
            ms(summary.p95_ms, 2),
            ms(summary.mean_ms, 2),
            ms(summary.max_ms, 2),
        ]
        for mode, summary in speed.items()
    ]
    used = result.filters_used()
    misses = [
        [
            f"{outcome.qa.question}",
            outcome.qa.language,
            outcome.qa.kind,
            f"`{outcome.qa.expected_source}`",
            str(outcome.ranks[chain] or "-"),
            str(outcome.ranks[bare] or "-"),
        ]
        for outcome in result.outcomes
        if outcome.ranks[chain] is None or outcome.ranks[chain] > 5
    ]
    recall_goal = overall.recall_at_5 >= retrieval.RECALL_GOAL
    speed_goal = speed[chain].p50_ms <= retrieval.P50_GOAL_MS
    return "\n".join(
        [
            "## 4. Retrieval quality and speed of the local index",
            "",
            f"Quality: the {overall.n} questions of `knowledge/sample/qa.jsonl` against the sample "
            f"index ({result.sample_documents} documents, {result.sample_chunks} chunks). A hit at "
            "k: a passage of the question's expected document among the first k passages. MRR: "
            f"1/rank of the first such passage within the first {retrieval.RANKED} (0 if none). "
            "`chain filter` is the retrieve step itself (`concierge.steps.retrieve.retrieve`): "
            "category of the expected document + language of the question, relaxed to language "
            "only, then none, when nothing matches. `no filter` searches everything.",
            "",
            "### Goals",
            "",
            table(
                ["goal", "target", "measured", "result"],
                [
                    [
                        "recall@5, chain filter",
                        f"≥ {retrieval.RECALL_GOAL:.2f}",
                        f"{overall.recall_at_5:.2f} (no filter: {overall_bare.recall_at_5:.2f})",
                        _verdict(recall_goal),
                    ],
                    [
                        f"p50 query latency, {result.synthetic_chunks:,}-chunk index, chain filter",
                        f"≤ {retrieval.P50_GOAL_MS:g} ms",
                        f"{ms(speed[chain].p50_ms, 2)} ms (no filter: "
                        f"{ms(speed[bare].p50_ms, 2)} ms)",
                        _verdict(speed_goal),
                    ],
                ],
                "llll",
            ),
            "",
            "### Quality on the sample knowledge base",
            "",
            table(
                [
                    "questions",
                    "n",
                    "R@1 chain filter",
                    "R@5 chain filter",
                    "MRR chain filter",
                    "R@1 no filter",
                    "R@5 no filter",
                    "MRR no filter",
                ],
                rows,
            ),
            "",
            "Filter that answered with the chain's ladder: "
            + ", ".join(
                f"`{name}` {used[name]}" for name in ("category+language", "language", "none")
            )
            + ".",
            "",
            f"Expected document not in the chain's top 5 ({len(misses)} questions; rank within "
            f"the first {retrieval.RANKED}, `-` = not there):",
            "",
            table(
                ["question", "lang", "kind", "expected", "rank, chain filter", "rank, no filter"],
                misses,
                "llllrr",
            )
            if misses
            else "none.",
            "",
            "### Speed on a generated 10k-chunk index",
            "",
            f"{result.synthetic_chunks:,} chunks: the sample's {result.sample_chunks}, then chunks "
            "made of sentences of the sample drawn at random (seed "
            f"{result.seed}) under one of its headings, each copying the category, language and "
            "sentence count of a sample chunk drawn at random "
            f"({result.synthetic_terms:,} distinct terms; made in "
            f"{result.synthetic_seconds:.1f} s, not part of any measurement). Written with "
            f"`write_index` ({result.synthetic_bytes / 1e6:.1f} MB of JSON) and read with "
            f"`load_index`: **median load {ms(result.load_ms, 0)} ms** over "
            f"{len(result.load_seconds)} loads ("
            + ", ".join(ms(s * 1000, 0) for s in result.load_seconds)
            + " ms; JSON parse, validation and everything the index builds at load). Then "
            f"{result.rounds} rounds (after one warm-up round) of every question, each searched "
            f"for {retrieval.SPEED_LIMIT} passages with the chain's filter ladder (`retrieve`, "
            f"relaxed for {result.relaxed_on_big_index} questions on this index) and without a "
            "filter, alternating which goes first; each search timed with "
            "`time.perf_counter()`.",
            "",
            table(["search", "n", "p50 (ms)", "p95 (ms)", "mean (ms)", "max (ms)"], speed_rows),
        ]
    )


def render(
    started: datetime,
    total_seconds: float,
    latency_result: latency.LatencyResult,
    import_result: imports.ImportResult,
) -> str:
    sections = [
        header(started, total_seconds),
        latency_section(latency_result),
        imports_section(import_result),
    ]
    return "\n\n".join(sections) + "\n"


def _rate(rate: semantic.Rate) -> str:
    return f"{rate.hits}/{rate.n} ({rate.rate:.0%})" if rate.n else "-"


def _cosine_cells(values: list[float]) -> list[str]:
    if not values:
        return ["0", *("-" for _ in range(5))]
    return [str(int(values[0])), *(f"{value:.3f}" for value in values[1:])]


def _safe_line(measured: semantic.Measured, label: str, language: str | None) -> str:
    safe = measured.lowest_safe(language)
    worst = max(
        (
            score
            for pair, score in zip(measured.pairs, measured.cosines, strict=True)
            if not pair.same_answer and language in (None, pair.language)
        ),
        default=float("nan"),
    )
    if safe is None:
        return (
            f"- {label}: **no threshold up to {semantic.THRESHOLDS[-1]:.2f} is free of false "
            f"hits** (highest cosine of a pair with a different answer: {worst:.3f})"
        )
    hits = measured.paraphrase_hits(safe, language)
    n_false = measured.false_hits(safe, language).n
    return (
        f"- {label}: lowest threshold with no false hit **{safe:.2f}** (highest cosine of a "
        f"pair with a different answer: {worst:.3f}); paraphrases hit there: **{_rate(hits)}**. "
        f"No false hit in {n_false} pairs still allows a rate up to about "
        f"{3 / n_false:.0%} (95%, rule of three)."
    )


def _measured_section(measured: semantic.Measured) -> list[str]:
    if measured.error is not None:
        return [f"### `{measured.spec}`", "", f"Not measured: {measured.error}"]
    timing = measured.embed_summary()
    distribution = [
        [f"`{kind}`", *_cosine_cells(measured.distribution(kind))] for kind in semantic.KINDS
    ]
    by_language = [
        [
            f"`{kind}` {language}",
            *_cosine_cells(measured.distribution(kind, language)),
        ]
        for language in semantic.LANGUAGES
        for kind in semantic.KINDS
    ]
    overall = [
        [
            f"{threshold:.2f}",
            _rate(measured.false_hits(threshold)),
            *(_rate(measured.false_hits(threshold, kind=kind)) for kind in semantic.FALSE_KINDS),
            _rate(measured.paraphrase_hits(threshold)),
        ]
        for threshold in semantic.REPORTED
    ]
    per_language = [
        [
            f"{threshold:.2f}",
            *(
                cell
                for language in semantic.LANGUAGES
                for cell in (
                    _rate(measured.false_hits(threshold, language)),
                    _rate(measured.paraphrase_hits(threshold, language)),
                )
            ),
        ]
        for threshold in semantic.REPORTED
    ]
    closest = [
        [f"{score:.3f}", pair.language, f"`{pair.kind}`", pair.a, pair.b]
        for score, pair in measured.closest_false(8)
    ]
    safe = measured.lowest_safe()
    if measured.useful() and safe is not None:
        verdict = (
            f"**`{measured.spec}`: {safe:.2f} is the lowest threshold without a false hit on "
            f"these pairs**, and it still serves {measured.paraphrase_hits(safe).rate:.0%} of "
            "the paraphrases. Any threshold recommended should keep a margin above the highest "
            "wrong pair, and be measured again on questions from real traffic."
        )
    else:
        best = measured.distribution(semantic.PARAPHRASE)[-1]
        above = measured.false_hits(best)
        where = (
            f"at {safe:.2f}, the lowest threshold without a false hit, "
            f"{_rate(measured.paraphrase_hits(safe))} of the paraphrases hit"
            if safe is not None
            else f"even at {semantic.THRESHOLDS[-1]:.2f} pairs with different answers hit"
        )
        verdict = (
            f"**`{measured.spec}`: no useful threshold.** {where[0].upper()}{where[1:]} (useful would "
            f"be at least {semantic.USEFUL_HIT_RATE:.0%}). The best-scoring paraphrase "
            f"({best:.3f}) scores below {_rate(above)} of the pairs with different answers: "
            "any threshold that serves paraphrases serves wrong answers first."
        )
    return [
        f"### `{measured.spec}` ({measured.dimensions} dimensions)",
        "",
        f"Embedding one question: p50 **{ms(timing.p50_ms, 3)} ms**, p95 {ms(timing.p95_ms, 3)} "
        f"ms, max {ms(timing.max_ms, 3)} ms ({timing.n} distinct questions, one call each).",
        "",
        "#### Cosine similarity per kind of pair",
        "",
        table(["pairs", "n", "min", "p25", "median", "p75", "max"], distribution),
        "",
        "<details><summary>per kind and language</summary>",
        "",
        table(["pairs", "n", "min", "p25", "median", "p75", "max"], by_language),
        "",
        "</details>",
        "",
        "#### False hits and paraphrase hits by threshold (a hit: cosine ≥ threshold)",
        "",
        table(
            [
                "threshold",
                "false hits, all",
                "negation",
                "swapped entity",
                "other quantity/detail",
                "paraphrase hits",
            ],
            overall,
        ),
        "",
        table(
            [
                "threshold",
                *(
                    cell
                    for language in semantic.LANGUAGES
                    for cell in (f"{language} false hits", f"{language} paraphrase hits")
                ),
            ],
            per_language,
        ),
        "",
        "#### Lowest threshold without a false hit (0.01 steps from 0.70 to 0.98)",
        "",
        _safe_line(measured, "all languages", None),
        *(_safe_line(measured, f"`{language}` only", language) for language in semantic.LANGUAGES),
        "",
        verdict,
        "",
        "The closest pairs with different answers:",
        "",
        table(["cosine", "lang", "kind", "a", "b"], closest, "rllll"),
    ]


def semantic_section(result: semantic.SemanticResult) -> str:
    counts = [
        [
            f"`{kind}`",
            *(str(result.count(kind, language)) for language in semantic.LANGUAGES),
            str(result.count(kind)),
            "yes" if kind == semantic.PARAPHRASE else "no",
        ]
        for kind in semantic.KINDS
    ]
    counts.append(
        [
            "all",
            *(
                str(sum(result.count(kind, language) for kind in semantic.KINDS))
                for language in semantic.LANGUAGES
            ),
            str(len(result.pairs)),
            "",
        ]
    )
    parts = [
        "## 5. Semantic cache tier: false hits before any threshold",
        "",
        f"`{semantic.PAIRS_PATH.as_posix()}`: {len(result.pairs)} question pairs over the sample "
        f"shop ({result.questions()} distinct questions). A **false hit** is a pair whose "
        "questions need different answers scoring at or above the threshold: the tier would "
        "serve one question's answer for the other. A **paraphrase hit** is the tier doing its "
        "job. Each distinct question is embedded once, alone, after "
        f"{len(semantic.WARM_UP)} warm-up questions, timed with `time.perf_counter()`. Only "
        "`offline` runs by default; a Bedrock embedder only with `--semantic-model "
        "bedrock:<model id>`.",
        "",
        table(["kind", *semantic.LANGUAGES, "all", "same answer"], counts),
    ]
    for measured in result.measured:
        parts += ["", *_measured_section(measured)]
    return "\n".join(parts)
