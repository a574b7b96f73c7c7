"""Moved to `concierge.ingestion`; this name stays for callers of the first version (bench/)."""

from __future__ import annotations

from concierge.ingestion import build_index, parse_document

__all__ = ["build_index", "parse_document"]
