"""`make bench`: one run of every benchmark, a Markdown report on stdout and in bench/results/.

    .venv/bin/python -m bench.run [--only latency|imports|replay|retrieval|semantic ...]
        [--questions 25] [--imports 10] [--replay-scale 0.3]
        [--conversations bench/conversations.jsonl] [--retrieval-rounds 5]
        [--semantic-model bedrock:<embedding model id> ...]
        [--out bench/results/latest.md]

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

from bench import (
    conversations,
    imports,
    latency,
    replay,
    replay_report,
    report,
    retrieval,
    semantic,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.md"
SECTIONS = ("latency", "imports", "replay", "retrieval", "semantic")


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {value}")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this benchmark (repeatable; default: all of them)",
    )
    parser.add_argument(
        "--questions", type=int, default=25, help="distinct questions timed (default 25)"
    )
    parser.add_argument(
        "--imports", type=int, default=10, help="fresh interpreters per import target (default 10)"
    )
    parser.add_argument(
        "--replay-scale",
        type=_positive,
        default=replay.DEFAULT_SCALE,
        help=f"factor on the simulated models' latency in the replay (default {replay.DEFAULT_SCALE:g})",
    )
    parser.add_argument(
        "--conversations",
        type=Path,
        default=conversations.DEFAULT_PATH,
        help="the replay's scripted conversations (default bench/conversations.jsonl)",
    )
    parser.add_argument(
        "--retrieval-rounds",
        type=int,
        default=retrieval.ROUNDS,
        help=f"timed rounds of every qa.jsonl question on the 10k-chunk index (default {retrieval.ROUNDS})",
    )
    parser.add_argument(
        "--semantic-model",
        action="append",
        default=[],
        metavar="SPEC",
        help="also measure this embedder in the semantic benchmark, e.g. "
        "bedrock:amazon.titan-embed-text-v2:0 (calls Bedrock with your credentials, once per "
        "question; repeatable; the offline embedder is always measured)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where the report is written too"
    )
    args = parser.parse_args(argv)
    if not (ROOT / "template.yaml").is_file():
        print(f"bench: {ROOT} is not the Concierge repository", file=sys.stderr)
        return 2
    selected = [name for name in SECTIONS if name in (args.only or SECTIONS)]
    if args.semantic_model and "semantic" not in selected:
        parser.error("--semantic-model is for the semantic benchmark: add --only semantic")

    started_at = datetime.now(UTC)
    started = time.perf_counter()
    latency_result = import_result = replay_result = retrieval_result = semantic_result = None
    with contextlib.redirect_stdout(sys.stderr):
        if "latency" in selected:
            print("bench: local chain latency ...", file=sys.stderr)
            latency_result = latency.run(ROOT, count=args.questions)
        if "imports" in selected:
            print("bench: handler imports ...", file=sys.stderr)
            import_result = imports.run(ROOT, repeats=args.imports)
        if "replay" in selected:
            print("bench: conversation replay ...", file=sys.stderr)
            replay_result = replay.run(ROOT, scale=args.replay_scale, path=args.conversations)
        if "retrieval" in selected:
            print("bench: retrieval quality and speed ...", file=sys.stderr)
            retrieval_result = retrieval.run(ROOT, rounds=args.retrieval_rounds)
        if "semantic" in selected:
            print("bench: semantic cache tier false hits ...", file=sys.stderr)
            semantic_result = semantic.run(ROOT, models=args.semantic_model)
    total = time.perf_counter() - started

    parts = [_header(started_at, total, argv if argv is not None else sys.argv[1:])]
    if latency_result is not None:
        parts.append(report.latency_section(latency_result))
    if import_result is not None:
        parts.append(report.imports_section(import_result))
    if replay_result is not None:
        parts.append(replay_report.section(replay_result))
    if retrieval_result is not None:
        parts.append(report.retrieval_section(retrieval_result))
    if semantic_result is not None:
        parts.append(report.semantic_section(semantic_result))
    text = "\n\n".join(parts) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    sys.stdout.flush()
    if import_result is not None:
        for step, names in import_result.flagged().items():
            print(
                f"bench: BUG: functions/{step}/app.py imports {', '.join(names)}", file=sys.stderr
            )
    status = 0
    for measured in semantic_result.measured if semantic_result is not None else []:
        if measured.error is not None:
            print(f"bench: {measured.spec} not measured: {measured.error}", file=sys.stderr)
            status = 1
    print(f"bench: report written to {args.out} ({total:.0f} s)", file=sys.stderr)
    return status


def _header(started_at: datetime, total: float, argv: list[str]) -> str:
    """The report's header, naming the command actually run when it is not plain `make bench`."""
    text = report.header(started_at, total)
    if argv:
        command = " ".join([".venv/bin/python -m bench.run", *argv])
        text = text.replace(
            f"Command: `{report.COMMAND}` (runs `.venv/bin/python -m bench.run` from the repository root)",
            f"Command: `{command}` (from the repository root)",
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
