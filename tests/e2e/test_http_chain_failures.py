"""A chain that fails for real answers 5xx in the error shape, never with its cause."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e.http_support import ChatApi, assert_error_reply, serving

from concierge.knowledge import IndexFile
from concierge_cli.local.runtime import LocalRuntime


@dataclass(frozen=True)
class Breakage:
    status: int
    code: str
    environ: dict[str, str] = field(default_factory=dict)
    index_missing: bool = False
    # Text of the underlying error that a client must never see.
    cause_fragments: tuple[str, ...] = ()


BREAKAGES = {
    "missing-index": Breakage(
        status=503,
        code="knowledge_base_unavailable",
        index_missing=True,
        cause_fragments=("missing.json", "no index at", "concierge index", "IndexNotFoundError"),
    ),
    "misconfigured-model": Breakage(
        status=500,
        code="misconfigured",
        environ={"CONCIERGE_ANSWER_MODEL": "nonsense"},
        cause_fragments=("nonsense", "unknown model", "bedrock:", "ConfigurationError"),
    ),
}


@dataclass(frozen=True)
class BrokenService:
    api: ChatApi
    breakage: Breakage
    hidden: tuple[str, ...]


@pytest.fixture(params=BREAKAGES.values(), ids=BREAKAGES.keys())
def broken(
    request: pytest.FixtureRequest,
    repo_root: Path,
    sample_index: tuple[Path, IndexFile],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[BrokenService]:
    breakage: Breakage = request.param
    if breakage.index_missing:
        index_path, kb_version = tmp_path / "missing.json", "x"
    else:
        index_path, kb_version = sample_index[0], sample_index[1].kb_version
    if breakage.environ:
        # A model spec other than `offline…` makes LocalRuntime keep real credentials, and
        # without any it cannot even create its emulated resources. Dummy values suffice:
        # every AWS call goes to moto, and a `nonsense` model never reaches a provider.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "e2e-dummy")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "e2e-dummy")
    hidden = (*breakage.cause_fragments, str(tmp_path))
    with (
        LocalRuntime(repo_root, index_path, kb_version, environ=breakage.environ) as runtime,
        serving(runtime) as api,
    ):
        yield BrokenService(api=api, breakage=breakage, hidden=hidden)


def test_a_failed_chain_answers_its_status_and_code_with_a_request_id(
    broken: BrokenService,
) -> None:
    # Given a service whose chain cannot answer
    # When a valid question is asked
    reply = broken.api.chat("What do you sell?")

    # Then the failure is reported with its status and code, in the error shape,
    # with a request id (the same as in the x-request-id header)
    error = assert_error_reply(reply, broken.breakage.status, broken.breakage.code)
    assert error["request_id"]


def test_a_failed_chain_never_shows_its_cause(broken: BrokenService) -> None:
    # Given a service whose chain cannot answer
    # When a valid question is asked
    reply = broken.api.chat("What do you sell?")

    # Then the body says nothing of the underlying error
    assert reply.status >= 500
    for fragment in broken.hidden:
        assert fragment.lower() not in reply.text.lower(), fragment
