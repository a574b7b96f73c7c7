"""Errors that end an ingest run (a problem with one file never does: it is reported)."""

from __future__ import annotations


class IngestError(Exception):
    """Base of the errors below."""


class PathNotFoundError(IngestError):
    """A path given to ingest does not exist."""


class PublishError(IngestError):
    """The target refused part of the publication; the previous index is still the current one."""


class CategoryFileError(IngestError):
    """A category file (`_category_.json`, `_categories_.json`) that cannot be read as one."""
