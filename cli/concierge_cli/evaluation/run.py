"""`concierge eval`: ask every case of every variant, score the answers, hold them to the
thresholds, write the report (the command line is in `command.py`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concierge_cli import stacks
from concierge_cli.evaluation.cases import Case, CaseError, load_cases
from concierge_cli.evaluation.checks import Scored, score
from concierge_cli.evaluation.judge import Judge
from concierge_cli.evaluation.report import JUDGED, as_html, as_json, shortfalls, summarise, table
from concierge_cli.evaluation.targets import Http, Target, in_process
from concierge_cli.support import UsageError

EVAL_DIR = Path("eval")
CONFIG = EVAL_DIR / "config.toml"
CASES = EVAL_DIR / "cases"


def load_config(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        config = tomllib.load(handle)
    for section in ("thresholds", "variants"):
        if not isinstance(config.get(section), dict):
            raise UsageError(f"{path}: a [{section}] table is expected")
    return config


def thresholds_for(config: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    """The thresholds of where and what the run asks (see eval/config.toml)."""
    name = args.thresholds or (
        "gate" if args.gate else "deployed" if (args.url or args.env) else "offline"
    )
    try:
        chosen: dict[str, float] = config["thresholds"][name]
    except KeyError:
        known = ", ".join(config["thresholds"])
        raise UsageError(f"no [thresholds.{name}] in the config (has {known})") from None
    return chosen


def evaluate_command(root: Path, args: argparse.Namespace) -> int:
    config = load_config(root / (args.config or CONFIG))
    try:
        cases = load_cases([root / path for path in (args.cases or [CASES])])
    except CaseError as error:
        raise UsageError(str(error)) from None
    if args.gate:
        cases = [case for case in cases if case.metadata.gate]
    thresholds = thresholds_for(config, args)
    remote = args.url or args.env
    variants = args.variant or (["default"] if remote else list(config["variants"]))
    unknown = [name for name in variants if not remote and name not in config["variants"]]
    if unknown:
        raise UsageError(
            f"no variant {unknown} in the config (has {', '.join(config['variants'])})"
        )
    judge_spec = args.judge or os.environ.get("CONCIERGE_JUDGE_MODEL")
    judged = [check for check in JUDGED if check in thresholds]
    if judged and not judge_spec:
        # A gate that holds judged checks must not pass because nobody judged.
        raise UsageError(
            f"these thresholds hold {', '.join(judged)}: name a judge (--judge, "
            "CONCIERGE_JUDGE_MODEL, make eval JUDGE=…) or other thresholds (--thresholds)"
        )
    judge = _judge(judge_spec) if judge_spec else None

    started = time.perf_counter()
    with _target(root, args, config, variants) as target:
        results = list(ask_all(cases, target, variants, judge, quiet=args.quiet))
    summaries = summarise(results)
    failing = shortfalls(summaries, thresholds)
    about = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "target": args.url or (f"stack {args.env}" if args.env else "in-process (the local chain)"),
        "case_count": len(cases),
        "variants": ", ".join(variants),
        "judge": f"{judge_spec} ({judge.versions})" if judge else "none",
        "seconds": round(time.perf_counter() - started, 1),
        "gate": "passed" if not failing else "failed",
    }
    out = args.out or (root / EVAL_DIR / "results" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(as_json(results, summaries, about), encoding="utf-8")
    (out / "report.html").write_text(
        as_html(results, summaries, thresholds, about), encoding="utf-8"
    )
    print(table(summaries, thresholds))
    print(
        f"\n{len(cases)} cases x {len(variants)} variant(s) in {about['seconds']} s; report: {out / 'report.html'}"
    )
    for line in failing:
        print(f"  under the threshold: {line}", file=sys.stderr)
    return 1 if failing else 0


def ask_all(
    cases: Sequence[Case],
    target: Target,
    variants: Sequence[str],
    judge: Judge | None = None,
    *,
    quiet: bool = True,
) -> Iterator[Scored]:
    """Every case asked of every variant, in a session of its own (its turns first)."""
    run = uuid.uuid4().hex[:8]
    for variant in variants:
        for case in cases:
            session = f"eval-{run}-{variant}-{case.id}"[:128].replace(".", "-")
            body: dict[str, Any] = {"session_id": session, "bypass_cache": True, "variant": variant}
            for turn in case.metadata.turns:
                target.chat({**body, "question": turn})
            reply = target.chat({**body, "question": case.vars.question})
            result = score(case, variant, reply.status, reply.body, reply.seconds)
            if judge is not None and not result.error:
                _judged(result, judge, reply.body)
            if not quiet:
                mark = "pass" if result.passed else "FAIL"
                print(f"{mark}  {variant:<12} {case.id}", file=sys.stderr)
            yield result


def _judged(result: Scored, judge: Judge, body: dict[str, Any]) -> None:
    correct = judge.correctness(result.case, result.answer)
    # The cited passages as the response quotes them (their snippets): what an HTTP client of
    # the API can see of its sources.
    passages = [str(c.get("snippet", "")) for c in body.get("citations") or []]
    faithful = judge.faithfulness(result.answer, passages)
    result.judged = {"correctness": correct.score, "faithfulness": faithful.score}
    result.reasons = {"correctness": correct.reason, "faithfulness": faithful.reason}


def _judge(spec: str) -> Judge:
    from concierge import wiring

    return Judge(wiring.judge_model(spec))


@contextmanager
def _target(
    root: Path, args: argparse.Namespace, config: dict[str, Any], variants: Sequence[str]
) -> Iterator[Target]:
    token = args.token or os.environ.get("CONCIERGE_EVAL_TOKEN")
    if args.url:
        yield Http(args.url, token)
    elif args.env:
        try:
            deployed = stacks.stack(root, args.env)
            url = deployed.output("ApiUrl")
            token = token or _signed_in(deployed)
        except stacks.StackError as error:
            raise UsageError(str(error)) from None
        yield Http(url, token)
    else:
        chosen = {name: config["variants"][name] for name in variants}
        with in_process(root, chosen) as local:
            yield local


def _signed_in(deployed: stacks.Stack) -> str | None:
    """A token of the eval's own user when CONCIERGE_EVAL_USER and CONCIERGE_EVAL_PASSWORD name
    one (a user of the stack's Cognito pool, in its admin group): how the pipeline evaluates."""
    user = os.environ.get("CONCIERGE_EVAL_USER")
    password = os.environ.get("CONCIERGE_EVAL_PASSWORD")
    if not (user and password):
        return None
    return deployed.sign_in(user, password)


def load_json_results(path: Path) -> dict[str, Any]:
    """A results.json of an earlier run (for comparisons in scripts)."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document
