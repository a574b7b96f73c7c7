"""Publish to this machine: the index file, then its manifest, each written atomically."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from concierge.adapters.retrieval.local_index import write_index
from concierge.knowledge import IndexFile
from concierge_cli.ingestion.manifest import Manifest, parse_manifest, write_atomically
from concierge_cli.ingestion.pipeline import IngestResult


class LocalTarget:
    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        # Beside the index it describes: two index files never share a manifest.
        self.manifest_path = index_path.with_name(f"{index_path.stem}.manifest.json")

    def __str__(self) -> str:
        return str(self.index_path)

    def load_manifest(self) -> Manifest | None:
        try:
            return parse_manifest(self.manifest_path.read_bytes())
        except FileNotFoundError:
            return None

    def load_index(self) -> IndexFile | None:
        """The index of the previous run (its vectors are reused), None when there is none
        this code reads."""
        try:
            return IndexFile.model_validate_json(self.index_path.read_bytes())
        except (FileNotFoundError, ValidationError):
            return None

    def publish(self, result: IngestResult) -> list[str]:
        # The index first: if the manifest then fails, the next run merely re-reads files.
        write_index(result.index, self.index_path)
        write_atomically(self.manifest_path, result.manifest.to_bytes())
        return [f"wrote {self.index_path}"]
