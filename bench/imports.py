"""Cold import time of each Lambda handler against importing its bare dependencies.

Every sample is a fresh interpreter (`python -c PROBE`) that times, with time.perf_counter,
only the import itself: a handler module loaded from functions/<step>/app.py the way the
Lambda runtime loads `app` (function folder first on sys.path), or the dependencies alone.
The child then reports which heavy packages ended up in sys.modules.

Two environments are measured:

* plain      only POWERTOOLS_SERVICE_NAME and AWS_DEFAULT_REGION set;
* in-Lambda  LAMBDA_TASK_ROOT set as well, which Powertools and the X-Ray SDK read to decide
             they run in Lambda (Tracer enabled and auto-patching; X-Ray local sampling).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import median

STEPS = ("api", "classify", "condense", "retrieve", "answer", "semantic")
DEPS = "deps: import"
DEPS_INIT = "deps: import + Logger/Metrics/Tracer()"
BASELINES = (DEPS, DEPS_INIT)
PLAIN, IN_LAMBDA = "plain", "in-Lambda"
ENVIRONMENTS = (PLAIN, IN_LAMBDA)
# Packages worth knowing about after an import; the first group must never be in a handler.
MUST_NOT_LOAD = ("moto", "yaml", "concierge_cli")
WATCHED = (*MUST_NOT_LOAD, "boto3", "botocore", "aws_xray_sdk", "requests", "urllib3", "pydantic")
_START, _END = "--bench-import-start--", "--bench-import-end--"

# Runs in the child. Only the import between the two perf_counter calls is timed; the report
# (json) is imported after it so it is not counted.
PROBE = f"""
import importlib.util, os, sys, time
kind, target = sys.argv[1], sys.argv[2]
print({_START!r}, file=sys.stderr, flush=True)
started = time.perf_counter()
if kind == "handler":
    sys.path.insert(0, os.path.dirname(target))
    spec = importlib.util.spec_from_file_location("app", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    assert callable(module.lambda_handler)
else:
    import boto3
    import pydantic
    from aws_lambda_powertools import Logger, Metrics, Tracer
    if target == "init":
        Logger(); Metrics(); Tracer()
elapsed = time.perf_counter() - started
print({_END!r}, file=sys.stderr, flush=True)
import json
watched = {list(WATCHED)!r}
print(json.dumps({{
    "seconds": elapsed,
    "modules": len(sys.modules),
    "loaded": [name for name in watched if name in sys.modules],
}}))
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "handler" or "deps"
    argument: str  # the handler's path, or "bare" / "init"
    lambda_task_root: str


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    modules: int = 0
    loaded: list[str] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.seconds) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.seconds) * 1000 if self.seconds else float("nan")


@dataclass
class ImportResult:
    runs: int = 0
    # environment -> target name -> measurements
    measured: dict[str, dict[str, Measured]] = field(default_factory=dict)
    # handler -> top-level package -> self time in ms (one `-X importtime` run, plain env)
    attribution: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def flagged(self) -> dict[str, list[str]]:
        """Handler -> packages it must not load but did (in any environment)."""
        found: dict[str, list[str]] = {}
        for by_target in self.measured.values():
            for step in STEPS:
                bad = [name for name in by_target[step].loaded if name in MUST_NOT_LOAD]
                for name in bad:
                    found.setdefault(step, [])
                    if name not in found[step]:
                        found[step].append(name)
        return found


def targets(root: Path) -> list[Target]:
    functions = root / "functions"
    handlers = [
        Target(step, "handler", str(functions / step / "app.py"), str(functions / step))
        for step in STEPS
    ]
    task_root = str(functions / STEPS[0])
    return [
        *handlers,
        Target(DEPS, "deps", "bare", task_root),
        Target(DEPS_INIT, "deps", "init", task_root),
    ]


def child_environment(environment: str, target: Target) -> dict[str, str]:
    """A clean environment: no AWS credentials or CONCIERGE_* settings from the caller's shell."""
    kept = {
        name: os.environ[name]
        for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        if name in os.environ
    }
    env = {**kept, "POWERTOOLS_SERVICE_NAME": "concierge", "AWS_DEFAULT_REGION": "us-east-1"}
    if environment == IN_LAMBDA:
        env["LAMBDA_TASK_ROOT"] = target.lambda_task_root
    return env


def _probe(
    root: Path, environment: str, target: Target, importtime: bool = False
) -> tuple[dict[str, Any], str]:
    command = [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-c",
        PROBE,
        target.kind,
        target.argument,
    ]
    done = subprocess.run(
        command,
        cwd=root,
        env=child_environment(environment, target),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"import probe {target.name} ({environment}) failed:\n{done.stderr[-2000:]}"
        )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report, done.stderr


def _self_time_by_package(stderr: str) -> dict[str, float]:
    """Sum `-X importtime` self times (ms) by top-level package, between the probe's markers."""
    totals: dict[str, float] = defaultdict(float)
    inside = False
    for line in stderr.splitlines():
        if line.strip() == _START:
            inside = True
        elif line.strip() == _END:
            inside = False
        elif inside and (match := _IMPORTTIME.match(line)):
            package = match.group(4).split(".")[0]
            totals[package] += int(match.group(1)) / 1000
    return dict(totals)


def run(root: Path, repeats: int = 10, log: Any = sys.stderr) -> ImportResult:
    wall = time.perf_counter()
    result = ImportResult(runs=repeats)
    plan = [(environment, target) for environment in ENVIRONMENTS for target in targets(root)]
    result.measured = {environment: {} for environment in ENVIRONMENTS}

    # One discarded run each: bytecode written, files in the OS cache, for every target alike.
    for environment, target in plan:
        _probe(root, environment, target)

    # Interleaved rounds, the order rotated each round, so noise spreads over all targets.
    for round_number in range(repeats):
        shift = (round_number * 3) % len(plan)
        for environment, target in plan[shift:] + plan[:shift]:
            report, _ = _probe(root, environment, target)
            entry = result.measured[environment].setdefault(target.name, Measured())
            entry.seconds.append(float(report["seconds"]))
            entry.modules = int(report["modules"])
            entry.loaded = sorted(set(entry.loaded) | set(report["loaded"]), key=WATCHED.index)
        print(f"  imports: round {round_number + 1}/{repeats}", file=log)

    # Where the time goes: one `-X importtime` run per handler (slower; used for shares only).
    for target in targets(root)[: len(STEPS)]:
        _, stderr = _probe(root, PLAIN, target, importtime=True)
        result.attribution[target.name] = _self_time_by_package(stderr)
    result.wall_seconds = time.perf_counter() - wall
    return result
