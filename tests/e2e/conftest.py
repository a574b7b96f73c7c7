"""Fixtures of the end-to-end tests: one local runtime and one real HTTP server per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.http_support import ChatApi, UsersService, empty_tables, serving

from concierge.knowledge import IndexFile
from concierge_cli.local.auth import AUTH_MODES, Authorizer, LocalKeys
from concierge_cli.local.runtime import LocalRuntime

# The users' servers: each user may spend this many tokens a day, and a request reserves this
# many until it settles. A first-turn miss with the offline models spends about 850 to 1,000,
# so a user is refused after four or five of them, and a test that asks three is never refused.
DAILY_TOKEN_LIMIT = 4_000
REQUEST_TOKEN_RESERVE = 1_500


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


# The same, for the tests of users: once per auth mode of the local server, with daily
# budgets. Like `module_runtime`, one runtime at a time: pytest finishes a module's tests of one
# mode (and stops its runtime) before it starts the other's. The local issuer's key lives in a
# temporary folder: the repository's .concierge/ is never touched.
@pytest.fixture(scope="module", params=AUTH_MODES, ids=[f"auth-{mode}" for mode in AUTH_MODES])
def module_users(
    request: pytest.FixtureRequest,
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[UsersService]:
    mode = request.param
    keys = LocalKeys(tmp_path_factory.mktemp(f"auth-{mode}") / "keys")
    path, index = sample_index
    environ = {
        "CONCIERGE_AUTH": mode,
        "CONCIERGE_DAILY_TOKEN_LIMIT": str(DAILY_TOKEN_LIMIT),
        "CONCIERGE_REQUEST_TOKEN_RESERVE": str(REQUEST_TOKEN_RESERVE),
    }
    with (
        LocalRuntime(repo_root, path, index.kb_version, environ=environ) as local,
        serving(local, Authorizer(mode, keys)) as client,
    ):
        yield UsersService(
            mode=mode,
            runtime=local,
            api=client,
            key=keys.signing_key(),
            token_limit=DAILY_TOKEN_LIMIT,
            token_reserve=REQUEST_TOKEN_RESERVE,
        )


@pytest.fixture
def users(module_users: UsersService) -> UsersService:
    """The users' server of this auth mode, with nothing stored (history, cache, budgets)."""
    empty_tables(module_users.runtime)
    return module_users
