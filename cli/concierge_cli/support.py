"""What the `concierge` commands share: the local work folder, where a local run keeps its
tables, the record a running `concierge serve` leaves for `concierge ask`, and usage errors.

Standard library only: `concierge ask` reads the server record before anything heavy loads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

# Where local runs keep the index and the emulated tables, below the repository root.
WORK_DIR = Path(".concierge")
# The local run's history and cache tables: one SQLite file (see concierge_cli.local.tables).
STORE_NAME = "tables.sqlite3"
# Next to the store while a `concierge serve` runs on it.
SERVER_RECORD_NAME = "server.json"


class UsageError(Exception):
    """Wrong arguments or setup: the command prints the message and exits with 2."""


def require_repository(root: Path) -> None:
    """The local runtime builds itself from the repository's template.yaml."""
    if not (root / "template.yaml").is_file():
        raise UsageError(
            f"{root} has no template.yaml: run from the repository root or pass --root"
        )


def default_store(root: Path) -> Path:
    return root / WORK_DIR / STORE_NAME


@dataclass(frozen=True)
class ServerRecord:
    """A running `concierge serve`: where it answers, which process it is, and the store and
    index it serves. Written when it starts listening, removed when it stops; a server that was
    killed leaves it behind, so a reader checks that the process lives and answers."""

    url: str
    pid: int
    store: Path
    index: Path

    @staticmethod
    def path_for(store: Path) -> Path:
        return store.with_name(SERVER_RECORD_NAME)

    @classmethod
    def read(cls, store: Path) -> ServerRecord | None:
        """The record next to `store`, if there is a readable one."""
        try:
            document = json.loads(cls.path_for(store).read_text(encoding="utf-8"))
            return cls(
                url=str(document["url"]),
                pid=int(document["pid"]),
                store=Path(document["store"]),
                index=Path(document["index"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self) -> None:
        path = self.path_for(self.store)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "url": self.url,
            "pid": self.pid,
            "store": str(self.store),
            "index": str(self.index),
        }
        # Whole or absent, never half-written, for a reader at the same moment.
        temporary = path.with_name(f"{path.name}.{self.pid}.tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, path)

    def remove(self) -> None:
        """Remove the record if it is still this server's: another server on the same store,
        started since, has replaced it with its own."""
        current = self.read(self.store)
        if current is not None and current.pid == self.pid:
            self.path_for(self.store).unlink(missing_ok=True)

    def process_alive(self) -> bool:
        if self.pid <= 0:
            return False  # os.kill would ask about a whole process group
        if os.name != "posix":
            return True  # os.kill(pid, 0) would terminate the process on Windows
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, someone else's: the health check decides
        return True
