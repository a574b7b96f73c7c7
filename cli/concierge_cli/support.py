"""What the `concierge` commands share: the local work folder and their usage errors."""

from __future__ import annotations

from pathlib import Path

# Where local runs keep the index and the emulated tables, below the repository root.
WORK_DIR = Path(".concierge")


class UsageError(Exception):
    """Wrong arguments or setup: the command prints the message and exits with 2."""


def require_repository(root: Path) -> None:
    """The local runtime builds itself from the repository's template.yaml."""
    if not (root / "template.yaml").is_file():
        raise UsageError(
            f"{root} has no template.yaml: run from the repository root or pass --root"
        )
