"""The S3 target in moto: documents, Bedrock KB metadata sidecars, deletions, the index written
last, and the bedrock-agent StartIngestionJob contract checked by botocore's Stubber."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from concierge.adapters.aws import reset_clients
from concierge.adapters.catalog import load_catalog
from concierge.adapters.retrieval.local_index import load_index
from concierge_cli.ingestion import ingest
from concierge_cli.ingestion.knowledge_base import KnowledgeBaseSync
from concierge_cli.ingestion.s3_target import S3Target
from concierge_cli.main import main

BUCKET = "concierge-knowledge"
KB_ID, DS_ID = "KB12345678", "DS12345678"


@pytest.fixture
def s3() -> Iterator[Any]:
    reset_clients()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    reset_clients()


@pytest.fixture
def agent() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-agent", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    (folder / "products").mkdir(parents=True)
    (folder / "returns.md").write_text(
        "---\ntitle: Returns\ncategory: policies\nlanguage: en\n---\n# Returns\nWithin 30 days.\n",
        encoding="utf-8",
    )
    (folder / "products" / "tents.html").write_text(
        "<html lang='en'><title>Tents</title><h1>Tents</h1><p>The Cirrus 2 sleeps two.</p></html>",
        encoding="utf-8",
    )
    (folder / "envios.txt").write_text(
        "Los pedidos se envían en dos días y el envío es gratis.", encoding="utf-8"
    )
    return folder


def _keys(s3: Any) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(item["Key"] for item in listing)


def _body(s3: Any, key: str) -> str:
    return str(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


def _expect_job(stubber: Stubber, job_id: str, version: str) -> None:
    stubber.add_response(
        "start_ingestion_job",
        {
            "ingestionJob": {
                "knowledgeBaseId": KB_ID,
                "dataSourceId": DS_ID,
                "ingestionJobId": job_id,
                "status": "STARTING",
                "startedAt": "2025-01-01T00:00:00Z",
                "updatedAt": "2025-01-01T00:00:00Z",
            }
        },
        {
            "knowledgeBaseId": KB_ID,
            "dataSourceId": DS_ID,
            "description": f"concierge ingest, knowledge-base version {version}",
        },
    )


def _run(kb: Path, target: S3Target) -> tuple[Any, list[str]]:
    result = ingest([kb], previous=target.load_manifest())
    return result, target.publish(result)


def test_documents_sidecars_index_and_manifest_are_written_and_a_job_started(
    s3: Any, agent: tuple[Any, Stubber], kb: Path
) -> None:
    # Given an S3 target that syncs a knowledge base, and StartIngestionJob expected for the
    # folder's knowledge-base version
    client, stubber = agent
    target = S3Target(f"s3://{BUCKET}/kb/", s3, KnowledgeBaseSync(KB_ID, DS_ID, client))
    version = ingest([kb]).report.kb_version
    _expect_job(stubber, "JOB0000001", version)

    # When the folder is ingested to it
    result, lines = _run(kb, target)

    # Then every document is stored as text with its metadata sidecar, beside the catalog, the
    # index and the manifest
    assert _keys(s3) == [
        "kb/categories.json",
        "kb/documents/envios.txt",
        "kb/documents/envios.txt.metadata.json",
        "kb/documents/products/tents.html.md",
        "kb/documents/products/tents.html.md.metadata.json",
        "kb/documents/returns.md",
        "kb/documents/returns.md.metadata.json",
        "kb/index.json",
        "kb/manifest.json",
    ]
    assert _body(s3, "kb/documents/returns.md") == "# Returns\nWithin 30 days."
    assert _body(s3, "kb/documents/products/tents.html.md") == "# Tents\n\nThe Cirrus 2 sleeps two."
    assert json.loads(_body(s3, "kb/documents/returns.md.metadata.json")) == {
        "metadataAttributes": {
            "category": "policies",
            "language": "en",
            "title": "Returns",
            "source": "returns.md",
        }
    }
    assert json.loads(_body(s3, "kb/documents/products/tents.html.md.metadata.json")) == {
        "metadataAttributes": {
            "category": "products",
            "language": "en",
            "title": "Tents",
            "source": "products/tents.html",
        }
    }
    content_type = s3.head_object(Bucket=BUCKET, Key="kb/documents/returns.md")["ContentType"]
    assert content_type == "text/markdown; charset=utf-8"
    # And the index is the ingest's version
    assert load_index(f"s3://{BUCKET}/kb/index.json", s3).kb_version == result.report.kb_version
    # And the catalog names each category, with its documents, and the languages' chunk counts
    catalog = load_catalog(f"s3://{BUCKET}/kb/categories.json", s3)
    assert {name: info.documents for name, info in catalog.categories.items()} == {
        "general": 1,
        "policies": 1,
        "products": 1,
    }
    assert set(catalog.languages) == {"en", "es"}
    # And the report says what was written, and which ingestion job was started
    assert lines == [
        f"uploaded 3 and deleted 0 documents under s3://{BUCKET}/kb/documents/",
        f"wrote s3://{BUCKET}/kb/categories.json",
        f"wrote s3://{BUCKET}/kb/index.json",
        f"started ingestion job JOB0000001 of knowledge base {KB_ID} (data source {DS_ID})",
    ]
    # And the manifest records the version the knowledge base was synced to
    manifest = target.load_manifest()
    assert manifest is not None
    assert manifest.knowledge_base_synced == result.report.kb_version


def test_a_re_ingest_uploads_the_changed_deletes_the_removed_and_leaves_the_rest(
    s3: Any, agent: tuple[Any, Stubber], kb: Path
) -> None:
    # Given a folder ingested to S3, then one document changed and one removed, and a second
    # ingestion job expected
    client, stubber = agent
    target = S3Target(f"s3://{BUCKET}/kb", s3, KnowledgeBaseSync(KB_ID, DS_ID, client))
    _expect_job(stubber, "JOB0000001", ingest([kb]).report.kb_version)
    _run(kb, target)
    (kb / "returns.md").write_text("# Returns\nWithin 60 days.", encoding="utf-8")
    (kb / "envios.txt").unlink()
    _expect_job(stubber, "JOB0000002", ingest([kb]).report.kb_version)
    written: list[str] = []
    s3.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: written.append(params["Key"])
    )

    # When it is ingested again
    _, lines = _run(kb, target)

    # Then only the changed document and its sidecar are uploaded, then the catalog, the index
    # and the manifest
    assert written == [
        "kb/documents/returns.md",
        "kb/documents/returns.md.metadata.json",
        "kb/categories.json",
        "kb/index.json",
        "kb/manifest.json",
    ]
    # And the removed document and its sidecar are deleted
    assert "kb/documents/envios.txt" not in _keys(s3)
    assert "kb/documents/envios.txt.metadata.json" not in _keys(s3)
    assert _body(s3, "kb/documents/returns.md") == "# Returns\nWithin 60 days."
    # And the report says so, and names the new ingestion job
    assert lines[0] == f"uploaded 1 and deleted 1 documents under s3://{BUCKET}/kb/documents/"
    assert lines[-1].startswith("started ingestion job JOB0000002")


def test_nothing_changed_means_no_upload_and_no_ingestion_job(
    s3: Any, agent: tuple[Any, Stubber], kb: Path
) -> None:
    # Given a folder ingested to S3, with its one ingestion job
    client, stubber = agent
    target = S3Target(f"s3://{BUCKET}/kb", s3, KnowledgeBaseSync(KB_ID, DS_ID, client))
    _expect_job(stubber, "JOB0000001", ingest([kb]).report.kb_version)
    first, _ = _run(kb, target)

    # When it is ingested again, unchanged
    second, lines = _run(kb, target)

    # Then the version is the same, nothing is uploaded, and no job is started (the Stubber
    # would fail on an unexpected one)
    assert second.report.kb_version == first.report.kb_version
    assert lines[0] == f"uploaded 0 and deleted 0 documents under s3://{BUCKET}/kb/documents/"
    assert lines[-1] == (
        f"knowledge base {KB_ID} (data source {DS_ID}) is up to date: no ingestion job started"
    )


class _FailingS3:
    """The moto client, except that writing `fail_key` fails."""

    def __init__(self, client: Any, fail_key: str) -> None:
        self._client, self._fail_key = client, fail_key

    def put_object(self, **params: Any) -> Any:
        if params["Key"] == self._fail_key:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "PutObject")
        return self._client.put_object(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_failed_upload_never_publishes_a_half_ingested_index(s3: Any, kb: Path) -> None:
    # Given a folder ingested to S3, then a document changed and one added, and an S3 that
    # fails to store the new one
    first, _ = _run(kb, S3Target(f"s3://{BUCKET}/kb", s3))
    (kb / "returns.md").write_text("# Returns\nWithin 60 days.", encoding="utf-8")
    (kb / "zelte.md").write_text("# Zelte\nDas Cirrus 2 ist für zwei.", encoding="utf-8")
    failing = S3Target(f"s3://{BUCKET}/kb", _FailingS3(s3, "kb/documents/zelte.md"))

    # When the ingest fails
    with pytest.raises(ClientError):
        _run(kb, failing)

    # Then the published index is still the earlier one
    assert load_index(f"s3://{BUCKET}/kb/index.json", s3).kb_version == first.report.kb_version

    # When the next run completes the ingest
    second, _ = _run(kb, S3Target(f"s3://{BUCKET}/kb", s3))

    # Then the new index and the changed document are published
    assert load_index(f"s3://{BUCKET}/kb/index.json", s3).kb_version == second.report.kb_version
    assert _body(s3, "kb/documents/returns.md") == "# Returns\nWithin 60 days."


def test_the_cli_ingests_to_s3_through_the_client_factory(
    s3: Any, kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the CLI ingests the folder to an S3 target
    code = main(["--root", str(tmp_path), "ingest", str(kb), "--target", f"s3://{BUCKET}/index"])

    # Then it reports the documents and the index it wrote to S3, and writes nothing locally
    out = capsys.readouterr().out
    assert code == 0
    assert "ingested 3 documents (3 new, 0 changed, 0 unchanged)" in out
    assert f"wrote s3://{BUCKET}/index/index.json" in out
    assert "index/index.json" in _keys(s3)
    assert not (tmp_path / ".concierge").exists()


def test_a_second_ingest_to_s3_reuses_the_vectors_of_the_index_there(
    s3: Any, kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a folder ingested to an S3 target, vectors included
    target = ["--root", str(tmp_path), "ingest", str(kb), "--target", f"s3://{BUCKET}/index"]
    main(target)
    first = capsys.readouterr().out

    # When one document changes and the folder is ingested there again
    (kb / "envios.txt").write_text("Los pedidos se envían en tres días.", encoding="utf-8")
    main(target)
    second = capsys.readouterr().out

    # Then the first run embedded every chunk, the second only the changed document's, reading
    # the others' vectors from the index on S3, and the index there carries them all
    assert ": 3 embedded, 0 reused" in first
    assert ": 1 embedded, 2 reused" in second
    stored = json.loads(_body(s3, "index/index.json"))
    assert stored["embeddings"]["dimensions"] == 256
    assert len(stored["chunks"]) == 3
