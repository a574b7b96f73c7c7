"""The local target: index and manifest written atomically; a failed run leaves the old ones."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from concierge.adapters.retrieval.local_index import load_index
from concierge.knowledge import IndexFile
from concierge_cli.ingestion import ingest
from concierge_cli.ingestion.local_target import LocalTarget


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    for number in range(1, 6):
        (folder / f"doc{number}.md").write_text(f"# Doc {number}\nVersion one.", encoding="utf-8")
    return folder


@pytest.fixture
def target(tmp_path: Path) -> LocalTarget:
    return LocalTarget(tmp_path / "out" / "index.json")


def _publish(kb: Path, target: LocalTarget) -> str:
    result = ingest([kb], previous=target.load_manifest())
    target.publish(result)
    return result.report.kb_version


def _edit_all(kb: Path) -> None:
    for path in kb.iterdir():
        path.write_text(path.read_text(encoding="utf-8").replace("one", "two"), encoding="utf-8")


def test_publish_writes_the_index_and_its_manifest_beside_it(kb: Path, target: LocalTarget) -> None:
    # When a folder is ingested and published locally
    version = _publish(kb, target)

    # Then the index holds that version, with a manifest beside it listing every document
    assert load_index(str(target.index_path)).kb_version == version
    assert target.manifest_path == target.index_path.parent / "index.manifest.json"
    manifest = target.load_manifest()
    assert manifest is not None
    assert manifest.kb_version == version
    assert sorted(manifest.sources) == [f"doc{n}.md" for n in range(1, 6)]


def test_a_run_interrupted_mid_ingest_leaves_the_previous_index_intact(
    kb: Path, target: LocalTarget
) -> None:
    # Given a published index, every document edited since, and a run that stops at the third
    version = _publish(kb, target)
    before = target.index_path.read_bytes(), target.manifest_path.read_bytes()
    _edit_all(kb)

    def interrupt_at_the_third_file(done: int, total: int, source: str) -> None:
        if done == 3:
            raise KeyboardInterrupt

    # When the folder is ingested and published again, and interrupted
    with pytest.raises(KeyboardInterrupt):
        result = ingest([kb], previous=target.load_manifest(), progress=interrupt_at_the_third_file)
        target.publish(result)

    # Then the index and manifest are byte for byte the ones published before
    assert (target.index_path.read_bytes(), target.manifest_path.read_bytes()) == before
    assert load_index(str(target.index_path)).kb_version == version


def test_a_write_that_fails_leaves_the_previous_index_whole_and_no_temporary_file(
    kb: Path, target: LocalTarget
) -> None:
    # Given a published index, and a new ingest of every document edited
    version = _publish(kb, target)
    _edit_all(kb)
    result = ingest([kb], previous=target.load_manifest())

    # When publishing it fails for a full disk
    with (
        mock.patch("json.dump", side_effect=OSError(28, "No space left on device")),
        pytest.raises(OSError, match="No space left"),
    ):
        target.publish(result)

    # Then the previous index is still there, whole, and no temporary file is left behind
    assert load_index(str(target.index_path)).kb_version == version
    assert sorted(p.name for p in target.index_path.parent.iterdir()) == [
        "index.json",
        "index.manifest.json",
    ]


def test_a_lost_manifest_write_only_costs_a_full_read_next_time(
    kb: Path, target: LocalTarget
) -> None:
    # Given a published index, and a new ingest of every document edited
    _publish(kb, target)
    _edit_all(kb)
    result = ingest([kb], previous=target.load_manifest())

    # When publishing it writes the index but fails to write the manifest
    with (
        mock.patch(
            "concierge_cli.ingestion.local_target.write_atomically",
            side_effect=OSError("disk full"),
        ),
        pytest.raises(OSError),
    ):
        target.publish(result)

    # Then the new index is complete
    assert load_index(str(target.index_path)).kb_version == result.report.kb_version

    # And the next run, with the stale manifest, re-reads what changed and comes to the same
    # version
    again = ingest([kb], previous=target.load_manifest())
    assert again.report.kb_version == result.report.kb_version


def test_index_files_written_before_chunk_ids_still_load_and_newer_formats_are_refused(
    tmp_path: Path,
) -> None:
    # Given an index file of format 1, whose chunks have no ids
    old = {
        "format_version": 1,
        "kb_version": "abc",
        "chunks": [
            {"source": "a.md", "title": "A", "text": "x", "category": "general", "language": "en"}
        ],
    }

    # When it is loaded
    loaded = IndexFile.model_validate(old)

    # Then its chunks load, with an empty id
    assert loaded.chunks[0].chunk_id == ""

    # When / Then the same file marked as format 2 is refused as newer than the code
    with pytest.raises(ValueError, match="index format 2 is newer than this code reads"):
        IndexFile.model_validate_json(json.dumps({**old, "format_version": 2}))
