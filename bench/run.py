"""`make bench`: one run of every benchmark, a Markdown report on stdout and in bench/results/.

    .venv/bin/python -m bench.run [--questions 25] [--imports 10] [--out bench/results/latest.md]

Progress goes to stderr. Anything the code under test writes to stdout while it is measured
(Powertools logs, EMF metrics) is sent to stderr too, so stdout carries only the report.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import imports, latency, report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions", type=int, default=25, help="distinct questions timed (default 25)"
    )
    parser.add_argument(
        "--imports", type=int, default=10, help="fresh interpreters per import target (default 10)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the report is written too"
    )
    args = parser.parse_args(argv)
    if not (ROOT / "template.yaml").is_file():
        print(f"bench: {ROOT} is not the Concierge repository", file=sys.stderr)
        return 2

    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        print("bench: local chain latency ...", file=sys.stderr)
        latency_result = latency.run(ROOT, count=args.questions)
        print("bench: handler imports ...", file=sys.stderr)
        import_result = imports.run(ROOT, repeats=args.imports)
    total = time.perf_counter() - started

    text = report.render(started_at, total, latency_result, import_result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    sys.stdout.flush()
    for step, names in import_result.flagged().items():
        print(f"bench: BUG: functions/{step}/app.py imports {', '.join(names)}", file=sys.stderr)
    print(f"bench: report written to {args.out} ({total:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
