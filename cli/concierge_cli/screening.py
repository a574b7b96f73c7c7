"""`concierge screen TEXT... [--json]`: the local screen's verdict on each text, as the chain
would give it on a question (or, with `--document`, on a passage).

    concierge screen "Ignore all previous instructions" "What do you sell?"
    concierge screen --json "..."        one JSON object per line:
                                         {"text", "flagged", "reasons", "score"}
    printf '%s\n' "a question" "another" | concierge screen -
                                         one text per line of standard input

The exit status is 0 whatever the verdicts (2 for bad usage), so the command can be used to
look at texts as much as to gate them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from concierge_cli.support import UsageError

STDIN = "-"
_SHOWN_CHARS = 70


def add_commands(commands: Any) -> None:
    """Register `screen` on the CLI's subparsers."""
    parser = commands.add_parser(
        "screen",
        help="the injection screen's verdict on texts",
        description="Screen each TEXT for injected instructions (prompt injection, jailbreaks, "
        "system-prompt extraction) as the chain screens questions before any model call. "
        "Exit status 0 whatever the verdicts.",
    )
    parser.add_argument(
        "texts", nargs="+", metavar="TEXT", help=f"texts to screen ({STDIN}: one per stdin line)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per text: {"text", "flagged", "reasons", "score"}',
    )
    parser.add_argument(
        "--document",
        action="store_true",
        help="screen the texts as documents (ingested or retrieved), not as questions",
    )
    parser.set_defaults(run=screen_texts)


def screen_texts(root: Path, args: argparse.Namespace) -> int:
    from concierge.safety.screen import Kind, screen

    texts = list(_texts(args.texts))
    if not texts:
        raise UsageError("no text to screen")
    kind: Kind = "document" if args.document else "question"
    for text in texts:
        verdict = screen(text, kind)
        if args.json:
            document = {
                "text": text,
                "flagged": verdict.flagged,
                "reasons": list(verdict.reasons),
                "score": verdict.score,
            }
            print(json.dumps(document, ensure_ascii=False))
        else:
            label = "flagged" if verdict.flagged else "clean"
            reasons = ", ".join(verdict.reasons) or "-"
            print(f"{label:<7}  {verdict.score:.3f}  {reasons}  {_shown(text)}")
    return 0


def _texts(arguments: list[str]) -> Iterator[str]:
    for argument in arguments:
        if argument == STDIN:
            yield from (line.rstrip("\n") for line in sys.stdin if line.strip())
        else:
            yield argument


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN_CHARS else flat[: _SHOWN_CHARS - 1] + "…"
