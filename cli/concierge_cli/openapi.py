"""The committed OpenAPI document of the HTTP API, docs/openapi.json, from the routes' code.

    python -m concierge_cli.openapi [PATH]   write it to PATH (default: standard output)

`make openapi` rewrites docs/openapi.json; a unit test fails when it differs from the code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from concierge.api import openapi_document

COMMITTED = Path("docs/openapi.json")


def render() -> str:
    """The document as committed: pretty-printed, keys sorted, a trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m concierge_cli.openapi", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, help=f"where to write it, e.g. {COMMITTED}")
    arguments = parser.parse_args(argv)
    document = render()
    if arguments.path is None:
        sys.stdout.write(document)
    else:
        arguments.path.write_text(document, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
