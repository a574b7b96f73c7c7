"""`make bench`: run the benchmarks and print one Markdown report (also bench/results/latest.md).

Every benchmark is a module `bench/<name>.py` with `TITLE` (its section heading),
`add_arguments(parser)` (its own options), `run(args, root, log)` (its result) and
`render(result)` (the Markdown of its figures; BENCHMARKS.md describes the method). A result
with a non-empty `errors` list makes the run exit with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "latency",
    "imports",
    "replay",
    "retrieval",
    "citations",
    "cascade",
    "semantic",
    "build",
    "local_state",
    "auth",
    "safety",
    "eval",
    "load",
    "web",
)


def _cpu() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    modules = {name: importlib.import_module(f"bench.{name}") for name in MODULES}
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        choices=MODULES,
        action="append",
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results" / "latest.md",
        help="where the report is written too",
    )
    for module in modules.values():
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    started_at, started = datetime.now(UTC), time.perf_counter()
    sections, errors = [], []
    # The code under test logs to stdout (Powertools, EMF metrics): stdout is the report's.
    with contextlib.redirect_stdout(sys.stderr):
        for name in (name for name in MODULES if name in (args.only or MODULES)):
            print(f"bench: {name} ...", file=sys.stderr)
            result = modules[name].run(args, ROOT, sys.stderr)
            sections.append(f"## {modules[name].TITLE}\n\n{modules[name].render(result)}")
            errors += getattr(result, "errors", [])
    python = f"{platform.python_implementation()} {platform.python_version()}"
    header = (
        f"# Concierge benchmarks\n\nRun of {started_at:%Y-%m-%d %H:%M} UTC on "
        f"`{platform.platform()}`, {_cpu()}, {os.cpu_count()} logical CPUs, {python}. Command: "
        f"`{' '.join(['.venv/bin/python -m bench.run', *argv])}`. Whole run: "
        f"{time.perf_counter() - started:.0f} s."
    )
    text = "\n\n".join([header, *sections]) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    sys.stdout.flush()
    for error in errors:
        print(f"bench: {error}", file=sys.stderr)
    print(f"bench: report written to {args.out}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
