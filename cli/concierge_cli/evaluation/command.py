"""`concierge eval`: ask every case of every variant, score the answers, hold them to the
thresholds, write the report.

    concierge eval                           every case, the variants of eval/config.toml, the
                                             chain in this process (offline models by default)
    concierge eval --gate                    the offline subset (`gate: true`), its thresholds
    concierge eval --env staging --token T   a deployed stack (its ApiUrl output; an admin's
                                             token, so the eval may name variants)
    concierge eval --url http://127.0.0.1:3000
    concierge eval --judge bedrock:<model>   adds judged correctness and faithfulness

Exit status: 0 when every variant meets every threshold, 1 when one does not, 2 for bad usage.
"""

# The evaluation itself (cases, pydantic, YAML, the chain) loads only when `eval` runs: every
# other command, and `concierge ask` through a server above all, must start without it.
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_commands(commands: Any) -> None:
    """Register `eval` on the CLI's subparsers."""
    parser = commands.add_parser(
        "eval",
        help="answer quality: run the eval cases against the chain, per variant",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--cases", type=Path, action="append", help="case files or folders (default: eval/cases)"
    )
    parser.add_argument(
        "--config", type=Path, help="variants and thresholds (default: eval/config.toml)"
    )
    parser.add_argument(
        "--gate",
        action="store_true",
        help="only the `gate: true` cases, held to the gate's thresholds",
    )
    parser.add_argument(
        "--variant",
        action="append",
        help="variants to compare (default: all of the config's, in this process; `default` over HTTP)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="an HTTP API: concierge serve's or a stack's ApiUrl")
    where.add_argument(
        "--env",
        choices=("dev", "staging", "prod"),
        help="the deployed stack of this environment (its ApiUrl output)",
    )
    parser.add_argument(
        "--token", help="bearer token for --url/--env (default: CONCIERGE_EVAL_TOKEN)"
    )
    parser.add_argument(
        "--judge",
        help="a model spec grading correctness and faithfulness (default: CONCIERGE_JUDGE_MODEL)",
    )
    parser.add_argument("--out", type=Path, help="report folder (default: eval/results/<time>)")
    parser.add_argument(
        "--thresholds",
        help="a [thresholds.NAME] table of the config (default: gate, deployed or offline)",
    )
    parser.add_argument("--quiet", action="store_true", help="only the summary table")
    parser.set_defaults(run=_evaluate)


def _evaluate(root: Path, args: argparse.Namespace) -> int:
    from concierge_cli.evaluation.run import evaluate_command

    return evaluate_command(root, args)
