"""Cold import time of each Lambda handler against importing its bare dependencies, outside
and inside a Lambda-like environment."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.figures import goals, median, ms, ratio, reproduce, table, verdict, x

TITLE = "Handler cold import vs bare dependencies"
RUNS = 10
GOAL = 1.25  # handler / bare dependencies, in-Lambda environment, every handler
STEPS = ("api", "classify", "condense", "retrieve", "answer", "semantic")
DEPS, DEPS_INIT = "deps: import", "deps: import + Logger/Metrics/Tracer()"
# The least any handler of this design imports: one pydantic model built, and the Logger, Metrics
# and Tracer as concierge.observability configures them (the Tracer patches botocore).
FLOOR = "floor: a pydantic model + Logger/Metrics/Tracer(patch botocore)"
BASELINES = (DEPS, DEPS_INIT, FLOOR)
PLAIN, IN_LAMBDA = "plain", "in-Lambda"
# A handler must never load the first three (the offline stack); the others are worth knowing.
MUST_NOT_LOAD = ("moto", "yaml", "concierge_cli")
WATCHED = (*MUST_NOT_LOAD, "boto3", "botocore", "aws_xray_sdk", "requests", "urllib3", "pydantic")
_START, _END = "--bench-import-start--", "--bench-import-end--"
# Runs in a fresh interpreter; only the import between the two clock readings is timed, in CPU
# seconds of the process: an import is single-threaded CPU work, and CPU time leaves out the
# time the process waited for a core on a shared machine.
PROBE = f"""
import importlib.util, os, sys, time
kind, target = sys.argv[1], sys.argv[2]
print({_START!r}, file=sys.stderr, flush=True)
started = time.process_time()
if kind == "handler":
    sys.path.insert(0, os.path.dirname(target))
    spec = importlib.util.spec_from_file_location("app", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    assert callable(module.lambda_handler)
elif target == "floor":
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from pydantic import BaseModel
    class Event(BaseModel):
        question: str
    Event.model_validate({{"question": "q"}})
    Logger(); Metrics(); Tracer(patch_modules=("botocore",))
else:
    import boto3
    import pydantic
    from aws_lambda_powertools import Logger, Metrics, Tracer
    if target == "init":
        Logger(); Metrics(); Tracer()
elapsed = time.process_time() - started
print({_END!r}, file=sys.stderr, flush=True)
import json
loaded = [name for name in {list(WATCHED)!r} if name in sys.modules]
print(json.dumps({{"seconds": elapsed, "modules": len(sys.modules), "loaded": loaded}}))
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$")


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    modules: int = 0
    loaded: list[str] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.seconds) * 1000


@dataclass
class ImportResult:
    runs: int = RUNS
    # environment -> target (a step or a baseline) -> measurements
    measured: dict[str, dict[str, Measured]] = field(default_factory=dict)
    # step -> top-level package -> self time in ms (one `-X importtime` run, plain environment)
    attribution: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--imports",
        type=int,
        default=RUNS,
        help=f"imports: fresh interpreters per target and environment (default {RUNS})",
    )


def _probe(root: Path, environment: str, target: str, importtime: bool = False) -> tuple[Any, str]:
    handler = root / "functions" / target / "app.py"
    kind, argument = ("handler", str(handler)) if target in STEPS else ("deps", target)
    argument = {DEPS: "bare", DEPS_INIT: "init", FLOOR: "floor"}.get(argument, argument)
    # A clean environment: no credentials or CONCIERGE_* settings from the caller's shell.
    env = {
        name: os.environ[name]
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        if name in os.environ
    }
    env |= {"POWERTOOLS_SERVICE_NAME": "concierge", "AWS_DEFAULT_REGION": "us-east-1"}
    if environment == IN_LAMBDA:
        env["LAMBDA_TASK_ROOT"] = str(root / "functions" / (target if target in STEPS else "api"))
    command = [sys.executable, *["-X", "importtime"] * importtime, "-c", PROBE, kind, argument]
    done = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"import probe {target} ({environment}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _self_time_by_package(stderr: str) -> dict[str, float]:
    """`-X importtime` self times (ms) summed by top-level package, between the markers."""
    totals: dict[str, float] = defaultdict(float)
    inside = False
    for line in stderr.splitlines():
        if line.strip() in (_START, _END):
            inside = line.strip() == _START
        elif inside and (match := _IMPORTTIME.match(line)):
            totals[match.group(3).split(".")[0]] += int(match.group(1)) / 1000
    return dict(totals)


def run(args: argparse.Namespace, root: Path, log: TextIO) -> ImportResult:
    result = ImportResult(runs=args.imports)
    plan = [(env, target) for env in (PLAIN, IN_LAMBDA) for target in (*STEPS, *BASELINES)]
    for environment, target in plan:  # one discarded run each: bytecode and OS cache warm
        _probe(root, environment, target)
    for number in range(args.imports):
        shift = (number * 3) % len(plan)  # interleaved, the order rotated every round
        for environment, target in plan[shift:] + plan[:shift]:
            report, _ = _probe(root, environment, target)
            entry = result.measured.setdefault(environment, {}).setdefault(target, Measured())
            entry.seconds.append(float(report["seconds"]))
            entry.modules = int(report["modules"])
            entry.loaded = [name for name in WATCHED if name in {*entry.loaded, *report["loaded"]}]
        print(f"  imports: round {number + 1}/{args.imports}", file=log)
    for step in STEPS:
        result.attribution[step] = _self_time_by_package(_probe(root, PLAIN, step, True)[1])
    for environment, measured in result.measured.items():
        for step in STEPS:
            if bad := [name for name in measured[step].loaded if name in MUST_NOT_LOAD]:
                result.errors.append(f"functions/{step}/app.py imports {bad} ({environment})")
    return result


def _rows(result: ImportResult, environment: str) -> list[list[str]]:
    measured = result.measured[environment]
    deps, deps_init = measured[DEPS].median_ms, measured[DEPS_INIT].median_ms
    rows = []
    for step in STEPS:
        entry = measured[step]
        share = ratio(entry.median_ms, deps)
        heavy = [f"`{name}`" for name in entry.loaded if name not in MUST_NOT_LOAD]
        bad = [name for name in entry.loaded if name in MUST_NOT_LOAD]
        row = [
            f"`functions/{step}/app.py`",
            str(len(entry.seconds)),
            ms(entry.median_ms),
            ms(min(entry.seconds) * 1000),
            ms(entry.median_ms - deps),
            x(share),
            ms(entry.median_ms - deps_init),
            str(entry.modules),
            ", ".join(heavy) + (f" **BUG: {', '.join(bad)}**" if bad else ""),
        ]
        rows.append([*row, verdict(share <= GOAL)] if environment == IN_LAMBDA else row)
    return rows


def render(result: ImportResult) -> str:
    headers = ["handler", "n", "median (ms)", "min (ms)", "handler - deps (ms)"]
    headers += ["handler / deps", "handler - deps+instances (ms)", "modules", "heavy modules"]
    lam = result.measured[IN_LAMBDA]
    shares = {step: ratio(lam[step].median_ms, lam[DEPS].median_ms) for step in STEPS}
    passed = sum(share <= GOAL for share in shares.values())
    worst = max(shares, key=lambda step: shares[step])
    baselines = [
        [
            name,
            str(len(result.measured[PLAIN][name].seconds)),
            ms(result.measured[PLAIN][name].median_ms),
            ms(lam[name].median_ms),
            str(result.measured[PLAIN][name].modules),
            ", ".join(f"`{n}`" for n in result.measured[PLAIN][name].loaded),
        ]
        for name in BASELINES
    ]
    floor = ratio(lam[FLOOR].median_ms, lam[DEPS].median_ms)
    steps = list(result.attribution)
    totals: dict[str, float] = defaultdict(float)
    for step in steps:
        for package, value in result.attribution[step].items():
            totals[package] += value
    top = sorted(totals, key=lambda name: -totals[name])[:10]
    attribution = [
        [f"`{package}`", *(ms(result.attribution[step].get(package, 0.0)) for step in steps)]
        for package in top
    ]
    attribution.append(
        ["**all packages**", *(ms(sum(result.attribution[s].values())) for s in steps)]
    )
    offline_stack = (
        "; ".join(result.errors) or "none (no handler loads `moto`, `yaml` or `concierge_cli`)"
    )
    return "\n".join(
        [
            reproduce(TITLE, "imports", ("--imports", result.runs, RUNS)),
            "",
            goals(
                (
                    "cold import of each handler, in-Lambda environment, vs bare dependencies",
                    f"≤ {GOAL:.2f}x",
                    f"{min(shares.values()):.2f}x to {shares[worst]:.2f}x (highest: `{worst}`); "
                    f"{passed} of {len(STEPS)} handlers within",
                    passed == len(STEPS),
                )
            ),
            "",
            f"The floor of any handler of this design (one pydantic model built, the Powertools "
            f"trio as configured) is {floor:.2f}x the bare dependencies in-Lambda.",
            "",
            "### In-Lambda environment (`LAMBDA_TASK_ROOT` set)",
            "",
            table([*headers, f"≤ {GOAL:.2f}x"], _rows(result, IN_LAMBDA), "lrrrrrrrll"),
            "",
            "### Plain environment (`POWERTOOLS_SERVICE_NAME`, `AWS_DEFAULT_REGION` only)",
            "",
            table(headers, _rows(result, PLAIN), "lrrrrrrrl"),
            "",
            "### Baselines",
            "",
            table(
                [
                    "baseline",
                    "n",
                    "plain median (ms)",
                    "in-Lambda median (ms)",
                    "modules",
                    "loaded",
                ],
                baselines,
                "lrrrrl",
            ),
            "",
            f"Offline stack loaded by a handler: {offline_stack}.",
            "",
            "### Where the import time goes (`-X importtime` self time by package, ms)",
            "",
            table(["package", *steps], attribution),
        ]
    )
