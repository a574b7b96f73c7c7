"""Fixtures of the end-to-end tests: one local runtime and one real HTTP server per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.http_support import ChatApi, empty_tables, serving

from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime


# One runtime and one server per module keeps the suite fast; every test still starts from
# empty tables. A module using these must not start another LocalRuntime (nor use the
# function-scoped `runtime` fixture): runtimes share the process environment and moto.
@pytest.fixture(scope="module")
def module_runtime(repo_root: Path, sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    path, index = sample_index
    with LocalRuntime(repo_root, path, index.kb_version) as local:
        yield local


@pytest.fixture(scope="module")
def module_api(module_runtime: LocalRuntime) -> Iterator[ChatApi]:
    with serving(module_runtime) as client:
        yield client


@pytest.fixture
def service_runtime(module_runtime: LocalRuntime) -> LocalRuntime:
    """The runtime behind `api`, its history and cache emptied for this test."""
    empty_tables(module_runtime)
    return module_runtime


@pytest.fixture
def api(module_api: ChatApi, service_runtime: LocalRuntime) -> ChatApi:
    """A client of a real HTTP server on 127.0.0.1 with no history and nothing cached."""
    return module_api
