"""`concierge search QUERY [--category C] [--language L] [-k N] [--json]`: what the knowledge base
returns for a query, for debugging it.

The retriever is the chain's own (`wiring.retriever()`): the backend and index the environment
configures (CONCIERGE_RETRIEVER, CONCIERGE_INDEX_URI, as the deployed functions read them), else
the local run's index (`.concierge/index.json`, written by `make run` or `concierge ingest`), or
the one `--index` names. `--category` and `--language` are the chain's metadata filter, applied
as given (the chain relaxes an empty filter; here an empty result shows that it is empty).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from concierge_cli.support import WORK_DIR, UsageError

# What one passage prints as, in the text output, at most.
_TEXT_SNIPPET_CHARS = 160


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "search",
        help="search the knowledge base as the chain's retrieve step does (for debugging it)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("query", help="the text to search for")
    parser.add_argument("--category", help="only passages of this category")
    parser.add_argument("--language", help="only passages in this language (ISO 639-1)")
    parser.add_argument(
        "-k",
        "--limit",
        type=int,
        help="how many passages (default: the chain's CONCIERGE_TOP_K, 4)",
    )
    parser.add_argument(
        "--index",
        type=Path,
        help="a local index file (default: the configured one, else .concierge/index.json)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one object: {"passages": [{"source", "title", "category", "language", "score", '
        '"snippet"}]}',
    )
    parser.set_defaults(run=search_command)


def search_command(root: Path, args: argparse.Namespace) -> int:
    from concierge import wiring
    from concierge.adapters.retrieval.port import SearchFilter
    from concierge.config import RetrieveSettings
    from concierge.errors import ConciergeError, ConfigurationError, IndexNotFoundError
    from concierge.text import snippet

    if not args.query.strip():
        raise UsageError("the query is empty")
    if args.limit is not None and not 1 <= args.limit <= 100:
        raise UsageError("-k must be between 1 and 100")
    _choose_index(root, args.index)
    try:
        limit = args.limit or wiring.settings(RetrieveSettings).top_k
        search_filter = SearchFilter(
            category=_lowered(args.category), language=_lowered(args.language)
        )
        passages = wiring.retriever().search(args.query, search_filter, limit)
    except (ConfigurationError, IndexNotFoundError) as error:
        raise UsageError(str(error)) from None
    except ConciergeError as error:
        # The knowledge base is there but did not answer (throttled, unreachable).
        print(f"concierge: {error}", file=sys.stderr)
        return 1
    if args.json:
        found = [
            {
                "source": passage.source,
                "title": passage.title,
                "category": passage.category,
                "language": passage.language,
                "score": passage.score,
                "snippet": snippet(passage.text),
            }
            for passage in passages
        ]
        print(json.dumps({"passages": found}, ensure_ascii=False, indent=2))
        return 0
    if not passages:
        print("no passage matches")
    for rank, passage in enumerate(passages, start=1):
        print(
            f"{rank}. {passage.score:.4f}  {passage.source}  "
            f"[{passage.category}, {passage.language}]  {passage.title}"
        )
        print(f"   {snippet(passage.text, _TEXT_SNIPPET_CHARS)}")
    return 0


def _choose_index(root: Path, index: Path | None) -> None:
    """Point the chain's settings at `index`, or at the local run's when nothing is configured.
    The command line is its own process: its environment is its settings."""
    if index is not None:
        path = index if index.is_absolute() else Path.cwd() / index
        os.environ["CONCIERGE_RETRIEVER"] = "local"
        os.environ["CONCIERGE_INDEX_URI"] = str(path.resolve())
    elif (
        "CONCIERGE_INDEX_URI" not in os.environ
        and os.environ.get("CONCIERGE_RETRIEVER", "local") == "local"
    ):
        os.environ["CONCIERGE_INDEX_URI"] = str(root / WORK_DIR / "index.json")
    from concierge import wiring

    wiring.reset()


def _lowered(value: str | None) -> str | None:
    # Ingestion lower-cases categories and languages; so does the classification.
    return value.strip().lower() if value and value.strip() else None
