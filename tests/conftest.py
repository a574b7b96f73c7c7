"""Shared fixtures (the repository, the sample index, the local runtime) and the one place
that marks tests: by the folder they live in (tests/unit → `unit`, tests/integration →
`integration`, tests/e2e → `e2e`, tests/infra → `infra`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from concierge.adapters.retrieval.local_index import write_index
from concierge.knowledge import IndexFile
from concierge_cli.ingestion import build_index
from concierge_cli.local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_KB = REPO_ROOT / "knowledge" / "sample"

# No test may reach a real AWS account, whatever the developer's shell has configured.
for _name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in [n for n in os.environ if n.startswith("CONCIERGE_")]:
    os.environ.pop(_name)


TESTS = Path(__file__).resolve().parent
MARKED_FOLDERS = ("unit", "integration", "e2e", "infra")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
        if folder not in MARKED_FOLDERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {MARKED_FOLDERS}")
        item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IndexFile]:
    """The bundled sample knowledge base, indexed once per test session."""
    index = build_index([SAMPLE_KB])
    path = tmp_path_factory.mktemp("index") / "index.json"
    write_index(index, path)
    return path, index


@pytest.fixture
def runtime(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    """A fresh local runtime (empty tables) over the sample index, offline models."""
    path, index = sample_index
    with LocalRuntime(REPO_ROOT, path, index.kb_version) as local:
        yield local
