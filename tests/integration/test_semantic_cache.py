"""The semantic tier: its store in DynamoDB (moto), and the chain with the tier on.

The chain tests use a scripted embedder (each question's vector is given), so they test the
plumbing — same language and scope only, threshold, remember after a store, deletion — and not
an embedder's judgement, which bench/semantic.py measures."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from local_api import answer, call, table_items
from moto import mock_aws

from concierge.adapters.dynamodb.semantic import SemanticIndex, bucket_key, pack, unpack
from concierge.adapters.embeddings.port import cosine
from concierge.knowledge import IndexFile
from concierge.models.state import QuestionScope
from concierge_cli.local.runtime import LocalRuntime

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = "cache"


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


# -- the store --------------------------------------------------------------------------------
@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "cache_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "cache_key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def scope(cache_scope: str = "scope", language: str = "en", model: str = "m") -> QuestionScope:
    return QuestionScope(cache_scope=cache_scope, language=language, embedding_model=model)


def store_entry(dynamodb: Any, key: str) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"cache_key": {"S": key}, "session_id": {"S": "s"}})


def remember(dynamodb: Any, where: QuestionScope, key: str, vector: list[float]) -> None:
    store_entry(dynamodb, key)
    SemanticIndex(dynamodb, TABLE).remember(
        where, key, vector, kb_version="kb1", expires_at=4_000_000_000
    )


def test_vectors_survive_quantisation_to_a_byte_per_dimension() -> None:
    # Given a unit vector
    vector = unit(0.3, -0.5, 0.1, 0.8)

    # When it is packed to a byte per dimension and unpacked
    restored = unpack(pack(vector))

    # Then it still points the same way
    assert cosine(vector, restored) > 0.999


def test_the_closest_question_at_or_above_the_threshold_is_found(dynamodb: Any) -> None:
    # Given two remembered questions of one scope
    remember(dynamodb, scope(), "q#near", unit(1, 0.1, 0))
    remember(dynamodb, scope(), "q#far", unit(0, 1, 0))
    index = SemanticIndex(dynamodb, TABLE)

    # When a close question is looked up under two thresholds
    found = index.find(scope(), unit(1, 0, 0), threshold=0.99)
    missed = index.find(scope(), unit(1, 0, 0), threshold=0.999)

    # Then the closest is found at or above the threshold only, with its similarity either way
    assert found.cache_key == "q#near"
    assert (missed.cache_key, missed.similarity) == (None, found.similarity)


def test_another_language_scope_or_embedding_model_is_another_bucket(dynamodb: Any) -> None:
    # Given a question remembered in English
    remember(dynamodb, scope(), "q#en", unit(1, 0))
    index = SemanticIndex(dynamodb, TABLE)

    # When the same vector is looked up in another language, scope or embedding model
    found = [
        index.find(other, unit(1, 0), 0.5)
        for other in (scope(language="de"), scope("other kb"), scope(model="another model"))
    ]

    # Then nothing is found
    for match in found:
        assert match.cache_key is None


def test_a_remembered_entry_names_its_bucket_and_can_be_forgotten(dynamodb: Any) -> None:
    # Given two remembered questions
    remember(dynamodb, scope(), "q#1", unit(1, 0))
    remember(dynamodb, scope(), "q#2", unit(0, 1))
    index = SemanticIndex(dynamodb, TABLE)
    entry = dynamodb.get_item(TableName=TABLE, Key={"cache_key": {"S": "q#1"}})["Item"]

    # When the first is forgotten (and a bucket that is gone is asked to forget)
    index.forget(bucket_key(scope()), "q#1")
    index.forget(bucket_key(scope("gone")), "q#2")

    # Then the first's cache entry named its bucket, and only the second is found
    assert entry["semantic_bucket"]["S"] == bucket_key(scope())
    assert index.find(scope(), unit(1, 0), 0.9).cache_key is None
    assert index.find(scope(), unit(0, 1), 0.9).cache_key == "q#2"


# -- the chain with the tier on ---------------------------------------------------------------
SHIPPING = unit(1, 0, 0)
VECTORS = {
    "How much does shipping cost?": SHIPPING,
    "What do I pay for delivery?": unit(1, 0.05, 0),  # a paraphrase: cosine 0.999
    "Do you ship to Switzerland?": unit(0.6, 0.8, 0),  # related, not the same: cosine 0.6
    "Wie viel kostet der Versand?": SHIPPING,  # same vector, other language: another bucket
}


class ScriptedEmbedder:
    spec = "scripted"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [VECTORS.get(text, unit(0, 0, 1)) for text in texts]


@pytest.fixture
def semantic_runtime(sample_index: tuple[Path, IndexFile]) -> Iterator[LocalRuntime]:
    path, index = sample_index
    environ = {"CONCIERGE_SEMANTIC_CACHE": "on", "CONCIERGE_SEMANTIC_THRESHOLD": "0.95"}
    with (
        mock.patch(
            "concierge.adapters.embeddings.registry.embedder_for",
            return_value=ScriptedEmbedder(),
        ),
        LocalRuntime(REPO_ROOT, path, index.kb_version, environ=environ) as local,
    ):
        yield local


def test_a_paraphrase_is_served_the_earlier_answer(semantic_runtime: LocalRuntime) -> None:
    # Given a question answered
    first = answer(semantic_runtime, "How much does shipping cost?")

    # When a paraphrase of it is asked
    with mock.patch("concierge.api.chat.record_cache_outcome") as counted:
        paraphrase = answer(semantic_runtime, "What do I pay for delivery?")

    # Then it is served the cached answer without a model call, counted as a semantic hit
    assert paraphrase["cached"] is True
    assert paraphrase["answer"] == first["answer"]
    assert paraphrase["usage"]["llm_calls"] == 0
    assert counted.call_args.kwargs["semantic"] is True


def test_below_the_threshold_or_in_another_language_is_a_miss(
    semantic_runtime: LocalRuntime,
) -> None:
    # Given a question answered
    answer(semantic_runtime, "How much does shipping cost?")

    # When a related question, and the same one in German, are asked
    related = answer(semantic_runtime, "Do you ship to Switzerland?")
    german = answer(semantic_runtime, "Wie viel kostet der Versand?")

    # Then neither is served from the cache, and the German one is answered in German
    assert related["cached"] is False
    assert (german["cached"], german["language"]) == (False, "de")


def test_an_embedder_failure_is_a_counted_miss(semantic_runtime: LocalRuntime) -> None:
    # Given an embedder that is down
    # When a question is asked
    with (
        mock.patch.object(ScriptedEmbedder, "embed", side_effect=RuntimeError("down")),
        mock.patch("concierge.api.chat.record_degraded") as degraded,
    ):
        body = answer(semantic_runtime, "How much does shipping cost?")

    # Then it is a cache miss, counted as a degraded semantic read
    assert body["cached"] is False
    assert list(degraded.call_args.args[0]) == ["semantic_read"]


def test_deleting_the_session_takes_its_questions_vectors_too(
    semantic_runtime: LocalRuntime,
) -> None:
    # Given a question answered in a session
    answer(semantic_runtime, "How much does shipping cost?", session_id="alice")

    # When the session is deleted, and a paraphrase of its question is asked
    deleted = call(semantic_runtime, "DELETE", "/sessions/alice")[1]
    paraphrase = answer(semantic_runtime, "What do I pay for delivery?")

    # Then the session's cache entry is deleted, and the paraphrase is not served its answer
    assert deleted["cache_entries"] == 1
    assert paraphrase["cached"] is False
    # And only the question asked after the deletion is remembered now
    items = table_items(semantic_runtime, "CacheTable")
    buckets = [item for item in items if item["cache_key"]["S"].startswith("sem#")]
    remembered = {key for bucket in buckets for key in bucket["entries"]["M"]}
    assert len(remembered) == 1
