"""Publish to S3 for Bedrock Knowledge Bases and the retrieve function.

Under `s3://bucket/prefix`:

    prefix/documents/<source>                  each document's normalised text (Markdown/text)
    prefix/documents/<source>.metadata.json    its Bedrock KB metadata sidecar
    prefix/manifest.json                       the manifest of incremental runs
    prefix/categories.json                     the catalog: categories described, languages
    prefix/index.json                          the local-index JSON the retrieve function loads

Order: documents and sidecars, deletions of withdrawn documents, the catalog, the index, the
ingestion job, the manifest. The index is the last thing a reader sees change, so a failed run
never publishes half of an ingest; the manifest follows it, so a failure before it only makes
the next run upload again.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from concierge.adapters.catalog import CATALOG_OBJECT
from concierge.knowledge import IndexFile
from concierge_cli.ingestion.errors import PublishError
from concierge_cli.ingestion.knowledge_base import KnowledgeBaseSync
from concierge_cli.ingestion.manifest import Manifest, parse_manifest
from concierge_cli.ingestion.pipeline import IngestResult

_AS_IS = (".md", ".txt")  # formats stored under their own name; others become `<name>.md`
_DELETE_BATCH = 1_000  # DeleteObjects takes at most this many keys


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri}: use s3://bucket/prefix")
    return bucket, prefix.strip("/")


class S3Target:
    def __init__(self, uri: str, s3_client: Any, sync: KnowledgeBaseSync | None = None) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self._s3 = s3_client
        self._sync = sync

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def document_key(self, source: str) -> str:
        stored = source if source.lower().endswith(_AS_IS) else f"{source}.md"
        return self.key(f"documents/{stored}")

    @property
    def index_key(self) -> str:
        return self.key("index.json")

    @property
    def catalog_key(self) -> str:
        # Beside the documents, not among them: the knowledge base must not ingest it.
        return self.key(CATALOG_OBJECT)

    @property
    def manifest_key(self) -> str:
        return self.key("manifest.json")

    def load_manifest(self) -> Manifest | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.manifest_key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        return parse_manifest(body)

    def load_index(self) -> IndexFile | None:
        """The index of the previous run (its vectors are reused), None when there is none
        this code reads."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.index_key)["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            return None
        try:
            return IndexFile.model_validate_json(body)
        except ValidationError:
            return None

    def publish(self, result: IngestResult) -> list[str]:
        uploads = result.to_publish()
        for source in uploads:
            self._upload(result, source)
        withdrawn = result.to_withdraw()
        self._delete([key for source in withdrawn for key in self._object_and_sidecar(source)])
        # What classify and condense route by when they search a Bedrock knowledge base.
        self._s3.put_object(
            Bucket=self.bucket,
            Key=self.catalog_key,
            Body=result.index.catalog().model_dump_json().encode(),
            ContentType="application/json",
        )
        self._s3.put_object(
            Bucket=self.bucket,
            Key=self.index_key,
            Body=result.index.model_dump_json().encode(),
            ContentType="application/json",
        )
        lines = [
            f"uploaded {len(uploads)} and deleted {len(withdrawn)} documents under "
            f"s3://{self.bucket}/{self.key('documents/')}",
            f"wrote s3://{self.bucket}/{self.catalog_key}",
            f"wrote s3://{self.bucket}/{self.index_key}",
        ]
        manifest = result.manifest
        if self._sync is not None:
            if uploads or withdrawn or manifest.knowledge_base_synced != manifest.kb_version:
                job = self._sync.start(manifest.kb_version)
                manifest = manifest.model_copy(
                    update={"knowledge_base_synced": manifest.kb_version}
                )
                lines.append(f"started ingestion job {job} of {self._sync}")
            else:
                lines.append(f"{self._sync} is up to date: no ingestion job started")
        self._s3.put_object(
            Bucket=self.bucket,
            Key=self.manifest_key,
            Body=manifest.to_bytes(),
            ContentType="application/json",
        )
        return lines

    def _object_and_sidecar(self, source: str) -> tuple[str, str]:
        key = self.document_key(source)
        return key, f"{key}.metadata.json"

    def _upload(self, result: IngestResult, source: str) -> None:
        key, sidecar = self._object_and_sidecar(source)
        first = result.manifest.sources[source].chunks[0]
        content_type = "text/plain" if key.lower().endswith(".txt") else "text/markdown"
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=result.text_of(source).encode(),
            ContentType=f"{content_type}; charset=utf-8",
        )
        attributes = {
            "category": first.category,
            "language": first.language,
            "title": first.title,
            "source": source,
        }
        self._s3.put_object(
            Bucket=self.bucket,
            Key=sidecar,
            Body=json.dumps({"metadataAttributes": attributes}, ensure_ascii=False).encode(),
            ContentType="application/json",
        )

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = self._s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                failed = ", ".join(f"{e.get('Key')} ({e.get('Code')})" for e in errors[:5])
                raise PublishError(f"could not delete {len(errors)} objects: {failed}")
