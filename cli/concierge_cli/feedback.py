"""`concierge feedback report`: users' ratings of answers, per A/B variant, with the confidence
of each share of up-ratings and whether a variant differs from the most rated one.

Where the ratings are read (the first that applies):

- `--feedback-table NAME`: that DynamoDB table, through the standard AWS configuration;
- `--env ENV`: the feedback table of that environment's stack — samconfig.toml's
  `[ENV.global.parameters]` names the stack and its region, and the stack's output
  `FeedbackTableName` names the table (CloudFormation DescribeStacks, then a Scan of it, with
  the standard AWS credentials, in that region);
- `CONCIERGE_FEEDBACK_TABLE`: that table;
- otherwise the local run's tables (.concierge/tables.sqlite3, or `--state`).

Figures per variant: ratings, ups, downs, the share of ups with its 95% Wilson interval, and,
against the variant with the most ratings (the baseline), the two-sided p-value of the
two-proportion z-test — Fisher's exact test when a cell's expected count is under 5 — and
whether p < 0.05. A second table breaks each variant down by language and by category.
`--json` prints the same figures as one JSON document. Comments are never read or shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concierge_cli.proportions import compare, wilson_interval
from concierge_cli.support import WORK_DIR, UsageError, default_store, require_repository

if TYPE_CHECKING:
    from concierge.adapters.dynamodb.feedback import FeedbackStore, Rating

TABLE_OUTPUT = "FeedbackTableName"
_DIGITS = 4


class ReportError(Exception):
    """The ratings could not be read (exit code 1)."""


def add_commands(commands: Any) -> None:
    """Register `feedback report` on the CLI's subparsers."""
    feedback = commands.add_parser("feedback", help="users' ratings of answers")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    report = feedback_commands.add_parser(
        "report",
        help="ratings per A/B variant: share of ups, 95%% interval, significance",
        description="Users' ratings of answers (POST /feedback) per A/B variant: ratings, ups, "
        "the share of ups with its 95%% Wilson interval and, against the most rated variant, "
        "whether the difference is significant (two-proportion z-test, or Fisher's exact test "
        "for small counts; p < 0.05); then per variant and language, and variant and category.",
    )
    report.add_argument(
        "--since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="only ratings made on or after this day (UTC)",
    )
    report.add_argument(
        "--env",
        help="read the feedback table of this environment's stack (its stack_name and region "
        "in samconfig.toml, the table from the stack's FeedbackTableName output)",
    )
    report.add_argument(
        "--feedback-table",
        help="DynamoDB table (default: $CONCIERGE_FEEDBACK_TABLE, else the local run's)",
    )
    report.add_argument(
        "--state",
        type=Path,
        help="the local run's tables, a SQLite file (default: .concierge/tables.sqlite3)",
    )
    report.add_argument("--json", action="store_true", help="print one JSON document")
    report.set_defaults(run=run_report)


def run_report(root: Path, args: argparse.Namespace) -> int:
    if args.env and args.feedback_table:
        raise UsageError("give --env or --feedback-table, not both")
    from concierge.errors import StoreUnavailableError

    since = _start_of(args.since) if args.since else None
    try:
        with _store(root, args) as (store, table):
            ratings = list(store.ratings(since))
    except (StoreUnavailableError, ReportError) as error:
        print(f"concierge: {error}", file=sys.stderr)
        return 1
    document = report(ratings, table=table, since=args.since.isoformat() if args.since else None)
    print(json.dumps(document, indent=2) if args.json else render(document))
    return 0


# -- the figures -------------------------------------------------------------------------------
@dataclass
class _Tally:
    ups: int = 0
    ratings: int = 0

    def add(self, rating: Rating) -> None:
        self.ratings += 1
        self.ups += rating.up

    def figures(self) -> dict[str, Any]:
        low, high = wilson_interval(self.ups, self.ratings)
        return {
            "ratings": self.ratings,
            "up": self.ups,
            "down": self.ratings - self.ups,
            "share_up": round(self.ups / self.ratings, _DIGITS),
            "interval_95": [round(low, _DIGITS), round(high, _DIGITS)],
        }


def report(ratings: Iterable[Rating], *, table: str, since: str | None = None) -> dict[str, Any]:
    """The report's figures, as the JSON document `--json` prints."""
    variants: dict[str, _Tally] = {}
    by: dict[str, dict[tuple[str, str], _Tally]] = {"language": {}, "category": {}}
    total = 0
    for rating in ratings:
        total += 1
        turn = rating.turn
        variants.setdefault(turn.variant, _Tally()).add(rating)
        by["language"].setdefault((turn.variant, turn.language or "?"), _Tally()).add(rating)
        by["category"].setdefault((turn.variant, turn.category or "?"), _Tally()).add(rating)
    # The baseline: the most rated variant (the first by name among equals).
    order = sorted(variants, key=lambda name: (-variants[name].ratings, name))
    baseline = order[0] if order else None
    rows = []
    for name in order:
        tally = variants[name]
        row: dict[str, Any] = {"variant": name, **tally.figures()}
        if baseline is None or name == baseline:
            row.update(compared_with=None, test=None, p_value=None, significant=False)
        else:
            base = variants[baseline]
            comparison = compare(tally.ups, tally.ratings, base.ups, base.ratings)
            row.update(
                compared_with=baseline,
                test=comparison.test,
                p_value=float(f"{comparison.p_value:.4g}"),
                significant=comparison.significant,
            )
        rows.append(row)
    return {
        "table": table,
        "since": since,
        "ratings": total,
        "baseline": baseline,
        "variants": rows,
        **{
            f"by_{kind}": [
                {"variant": variant, kind: value, **tally.figures()}
                for (variant, value), tally in sorted(
                    groups.items(), key=lambda item: (order.index(item[0][0]), item[0][1])
                )
            ]
            for kind, groups in by.items()
        },
    }


def render(document: dict[str, Any]) -> str:
    """The report as two text tables."""
    since = f" since {document['since']}" if document["since"] else ""
    lines = [f"Feedback{since} in {document['table']}: {document['ratings']} ratings"]
    if not document["ratings"]:
        return "\n".join(lines)
    baseline = document["baseline"]
    lines += [
        "",
        _table(
            ["variant", "ratings", "up", "up share", "95% interval", f"vs {baseline}"],
            [
                [
                    row["variant"],
                    str(row["ratings"]),
                    str(row["up"]),
                    _percent(row["share_up"]),
                    _interval(row["interval_95"]),
                    _verdict(row),
                ]
                for row in document["variants"]
            ],
        ),
        "",
        _table(
            ["variant", "by", "ratings", "up", "up share", "95% interval"],
            [
                [
                    row["variant"],
                    f"{kind}={row[kind]}",
                    str(row["ratings"]),
                    str(row["up"]),
                    _percent(row["share_up"]),
                    _interval(row["interval_95"]),
                ]
                for kind in ("language", "category")
                for row in document[f"by_{kind}"]
            ],
        ),
    ]
    return "\n".join(lines)


def _verdict(row: dict[str, Any]) -> str:
    if row["compared_with"] is None:
        return "baseline"
    test = "z-test" if row["test"] == "z" else "Fisher"
    verdict = "significant" if row["significant"] else "not significant"
    return f"p={row['p_value']:.3g} ({test}), {verdict}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _interval(bounds: list[float]) -> str:
    return f"[{_percent(bounds[0])}, {_percent(bounds[1])}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell: counts and shares to the right, the rest (names,
    intervals, verdicts) to the left."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = {"ratings", "up", "up share"}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if name in numeric else cell.ljust(width)
            for name, cell, width in zip(header, cells, widths, strict=True)
        ).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


# -- where the ratings are -----------------------------------------------------------------------
@contextmanager
def _store(root: Path, args: argparse.Namespace) -> Iterator[tuple[FeedbackStore, str]]:
    from concierge import wiring
    from concierge.config import TableSettings

    if args.feedback_table:
        yield wiring.feedback_store(args.feedback_table), args.feedback_table
        return
    if args.env:
        from concierge_cli import stacks

        try:
            deployed = stacks.stack(root, args.env)
            table = deployed.output(TABLE_OUTPUT)
        except stacks.StackError as error:
            raise ReportError(str(error)) from None
        yield wiring.feedback_store(table, region=deployed.region), table
        return
    if (configured := wiring.settings(TableSettings).feedback_table) is not None:
        yield wiring.feedback_store(configured), configured
        return
    with _local_table(root, args.state or default_store(root)) as table:
        yield wiring.feedback_store(table), table


@contextmanager
def _local_table(root: Path, store: Path) -> Iterator[str]:
    """The local run's feedback table, read in place in its store."""
    from concierge_cli.local.runtime import LocalRuntime

    require_repository(root)
    if not store.is_file():
        raise UsageError(f"no local tables at {store}: nothing has been asked locally yet")
    with LocalRuntime(root, root / WORK_DIR / "index.json", state_path=store) as runtime:
        yield runtime.table_names["FeedbackTable"]


def _start_of(day: date) -> int:
    """Epoch seconds of the day's first second, UTC."""
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp())


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: YYYY-MM-DD") from None
