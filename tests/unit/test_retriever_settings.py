"""Which retriever an environment gets, and what its settings accept."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from concierge import wiring
from concierge.adapters.retrieval.bedrock_kb import BedrockKnowledgeBase
from concierge.adapters.retrieval.local_index import LocalIndex
from concierge.adapters.retrieval.port import SearchFilter
from concierge.config import KnowledgeBaseSettings, RetrieveSettings, SettingsGroup, load
from concierge.errors import ConfigurationError
from concierge.knowledge import IndexFile
from concierge.models.state import Passage, RetrieveInput
from concierge.steps.retrieve import retrieve

REPO_ROOT = Path(__file__).resolve().parents[2]
KB = {"CONCIERGE_RETRIEVER": "bedrock-kb", "CONCIERGE_KNOWLEDGE_BASE_ID": "KBTEST1234"}


def test_the_local_index_is_the_default_and_needs_its_uri() -> None:
    # Given only an index URI
    environ = {"CONCIERGE_INDEX_URI": "s3://bucket/index/index.json"}

    # When the retrieve settings are loaded
    settings = load(RetrieveSettings, environ)

    # Then the retriever is the local index, without a minimum score
    assert settings.retriever == "local"
    assert settings.min_score is None

    # When / Then without the URI, the error says it is required
    with pytest.raises(ConfigurationError, match="CONCIERGE_INDEX_URI is required"):
        load(RetrieveSettings, {})


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The process environment as the composition root reads it, rebuilt for each test; fake
    credentials, so building a client never looks for real ones over the network."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    wiring.reset()
    yield monkeypatch
    wiring.reset()


def test_a_knowledge_base_needs_its_id_and_not_an_index(
    environment: pytest.MonkeyPatch,
) -> None:
    # Given a knowledge base backend without an id (CloudFormation writes "" for "not set")
    environment.setenv("CONCIERGE_RETRIEVER", "bedrock-kb")
    environment.setenv("CONCIERGE_KNOWLEDGE_BASE_ID", "")

    # When / Then building the retriever is an error naming the missing variable
    with pytest.raises(ConfigurationError, match="CONCIERGE_KNOWLEDGE_BASE_ID is required"):
        wiring.retriever()

    # When the settings are loaded with an id, and no index or minimum score
    settings = load(RetrieveSettings, {**KB, "CONCIERGE_INDEX_URI": "", "CONCIERGE_MIN_SCORE": ""})
    knowledge_base = load(KnowledgeBaseSettings, KB)

    # Then no index is needed, and the metadata attributes take their defaults
    assert (knowledge_base.knowledge_base_id, settings.index_uri, settings.min_score) == (
        "KBTEST1234",
        None,
        None,
    )
    assert (
        knowledge_base.knowledge_base_category_attribute,
        knowledge_base.knowledge_base_language_attribute,
    ) == ("category", "language")


@pytest.mark.parametrize(
    ("group", "variables", "named"),
    [
        pytest.param(
            RetrieveSettings, {"CONCIERGE_RETRIEVER": "kendra"}, "CONCIERGE_RETRIEVER", id="backend"
        ),
        pytest.param(
            KnowledgeBaseSettings,
            {**KB, "CONCIERGE_KNOWLEDGE_BASE_ID": "arn:aws:bedrock:eu-west-1:1:knowledge-base/X"},
            "CONCIERGE_KNOWLEDGE_BASE_ID",
            id="arn-not-id",
        ),
        pytest.param(
            RetrieveSettings,
            {**KB, "CONCIERGE_MIN_SCORE": "-0.1"},
            "CONCIERGE_MIN_SCORE",
            id="score",
        ),
        pytest.param(
            KnowledgeBaseSettings,
            {**KB, "CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP": "products"},
            r"CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP: .*'products' is not category=label",
            id="map-pair",
        ),
        pytest.param(
            KnowledgeBaseSettings,
            {**KB, "CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP": "products=a,products=b"},
            r"CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP: .*mapped twice",
            id="map-twice",
        ),
    ],
)
def test_invalid_values_name_their_variable(
    group: type[SettingsGroup], variables: dict[str, str], named: str
) -> None:
    # Given one invalid variable of a settings group
    # When / Then loading that group is an error naming it
    with pytest.raises(ConfigurationError, match=named):
        load(group, variables)


def test_the_category_map_reads_category_label_pairs() -> None:
    # Given a category map with spaces and an empty pair, and a minimum score
    environ = {
        **KB,
        "CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP": " products = catalogue ,,pricing=prices",
        "CONCIERGE_MIN_SCORE": "0.35",
    }

    # When the knowledge-base and the retrieve settings are loaded
    knowledge_base = load(KnowledgeBaseSettings, environ)
    retrieve_settings = load(RetrieveSettings, {**KB, "CONCIERGE_MIN_SCORE": "0.35"})

    # Then the map holds each category's label, trimmed, and the score is a number
    assert dict(knowledge_base.knowledge_base_category_map) == {
        "products": "catalogue",
        "pricing": "prices",
    }
    assert retrieve_settings.min_score == 0.35


def test_the_settings_choose_the_backend(tmp_path: Path, environment: pytest.MonkeyPatch) -> None:
    # Given an index file and a knowledge base configuration
    index = tmp_path / "index.json"
    index.write_text(IndexFile(kb_version="1", chunks=[]).model_dump_json(), encoding="utf-8")

    # When the composition root builds the retriever of each
    environment.setenv("CONCIERGE_INDEX_URI", str(index))
    local = wiring.retriever()
    wiring.reset()
    for name, value in {
        **KB,
        "CONCIERGE_KNOWLEDGE_BASE_LANGUAGE_ATTRIBUTE": "lang",
        "CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP": "products=catalogue",
    }.items():
        environment.setenv(name, value)
    knowledge_base = wiring.retriever()

    # Then each gets its own backend, the knowledge base with its attributes and labels
    assert isinstance(local, LocalIndex)
    assert isinstance(knowledge_base, BedrockKnowledgeBase)
    assert knowledge_base.knowledge_base_id == "KBTEST1234"
    assert knowledge_base.metadata_filter(SearchFilter(category="products", language="en")) == {
        "andAll": [
            {"equals": {"key": "category", "value": "catalogue"}},
            {"equals": {"key": "lang", "value": "en"}},
        ]
    }


# Runs in a fresh interpreter: which retrieval adapters a cold retrieve function imports.
_COLD_START = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
spec = importlib.util.spec_from_file_location("app", sys.argv[1] + "/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from concierge import wiring
wiring.retriever()
print(json.dumps(sorted(m for m in sys.modules if m.startswith("concierge.adapters.retrieval."))))
"""


@pytest.mark.parametrize(
    ("variables", "loaded", "not_loaded"),
    [
        pytest.param(KB, "bedrock_kb", "local_index", id="bedrock-kb"),
        pytest.param(
            {"CONCIERGE_INDEX_URI": "index.json"}, "local_index", "bedrock_kb", id="local"
        ),
    ],
)
def test_a_cold_retrieve_function_imports_only_its_backend(
    tmp_path: Path, variables: dict[str, str], loaded: str, not_loaded: str
) -> None:
    # Given an empty index file, and the variables of one backend
    (tmp_path / "index.json").write_text(
        IndexFile(kb_version="1", chunks=[]).model_dump_json(), encoding="utf-8"
    )

    # When a fresh interpreter loads the retrieve function and builds its retriever
    result = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(REPO_ROOT / "functions" / "retrieve")],
        cwd=tmp_path,
        env={
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_SERVICE_NAME": "concierge",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": str(REPO_ROOT / "layers" / "concierge"),
            **variables,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it imported that backend's adapter, and not the other's
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    assert f"concierge.adapters.retrieval.{loaded}" in modules
    assert f"concierge.adapters.retrieval.{not_loaded}" not in modules


class _Ranked:
    """A backend that returns the same scored passages whatever the filter."""

    def __init__(self, *scores: float) -> None:
        self.scores = scores
        self.filters: list[SearchFilter] = []

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        self.filters.append(search_filter)
        return [
            Passage(source=f"doc{n}.md", title="", text="", category="", language="", score=s)
            for n, s in enumerate(self.scores)
        ]


def test_a_minimum_score_applies_to_any_backend() -> None:
    # Given a request, a backend with one strong and one weak passage, and one with only a
    # weak passage
    request = RetrieveInput(
        request_id="r",
        question="q",
        category="policies",
        language="en",
        deadline_ms=4_102_444_800_000,
    )
    mixed = _Ranked(7.5, 2.0)
    weak = _Ranked(1.0)

    # When each is searched with a minimum score between the two
    kept = retrieve(request, mixed, 4, min_score=3.0)
    nothing = retrieve(request, weak, 4, min_score=3.0)

    # Then the strong passage is kept under the first filter
    assert [p.source for p in kept.passages] == ["doc0.md"]
    assert kept.filter_used == "category+language"

    # And with only weak passages under every filter, all three filters were tried and none
    # is returned
    assert (nothing.passages, nothing.filter_used, len(weak.filters)) == ([], "none", 3)
