"""The knowledge base's catalog (its categories, described, and its languages), read from where
ingestion keeps it: the `categories.json` object beside the documents of a knowledge base, or
the local index itself.

Read once per container by the composition root, from a path or an s3://bucket/key URI. A
missing object is `IndexNotFoundError`, as a missing index is: the knowledge base has not been
ingested where the function looks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from concierge.errors import IndexNotFoundError
from concierge.knowledge import Catalog, IndexFile

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

    from concierge.adapters.aws_errors import AwsError

# The object name `concierge ingest --target s3://…` writes the catalog under, beside index.json.
CATALOG_OBJECT = "categories.json"


def load_catalog(uri: str, s3_client: Any | None = None) -> Catalog:
    """A `categories.json` catalog."""
    body = _read(uri, s3_client, "categories")
    try:
        return Catalog.model_validate_json(body)
    except ValidationError as error:
        raise IndexNotFoundError(
            f"{uri} is not a catalog `concierge ingest` wrote: {error}"
        ) from None


def load_index_catalog(uri: str, s3_client: Any | None = None) -> Catalog:
    """The catalog of an index file, without building the index (a function that routes
    questions but does not search them needs only this)."""
    return IndexFile.model_validate_json(_read(uri, s3_client, "index")).catalog()


def _read(uri: str, s3_client: Any | None, what: str) -> bytes:
    if uri.startswith("s3://"):
        if s3_client is None:
            raise ValueError(f"{uri} needs an S3 client")
        from concierge.adapters.aws_errors import KNOWLEDGE_BASE, translated

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        with translated(KNOWLEDGE_BASE, f"{what} {uri}", refine=_missing):
            body: bytes = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    path = Path(uri)
    if not path.is_file():
        raise IndexNotFoundError(f"no {what} at {path}: write it with `concierge ingest`")
    return path.read_bytes()


def _missing(exc: ClientError, error: AwsError, what: str) -> IndexNotFoundError | None:
    if error.code == "nosuchkey":
        return IndexNotFoundError(f"no {what}: write it with `concierge ingest --target s3://…`")
    return None
