"""The embedding port, the offline embedder and the registry (no network)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from concierge.adapters.embeddings.offline import DIMENSIONS, OfflineEmbedder
from concierge.adapters.embeddings.port import cosine, normalised
from concierge.adapters.embeddings.registry import embedder_for
from concierge.errors import ConfigurationError

QUESTIONS = [
    "Can I return a jacket I ordered online?",
    "¿Cuánto cuesta el envío a Canarias?",
    "Wie lange dauert die Lieferung in die Schweiz?",
    "Cirrus 2",
]


def similarity(a: str, b: str) -> float:
    first, second = OfflineEmbedder().embed([a, b])
    return cosine(first, second)


def test_the_same_text_always_gives_the_same_vector() -> None:
    # Given two embedders (a new Lambda container builds its own)
    first, second = OfflineEmbedder(), OfflineEmbedder()
    # When they embed the same questions, in one call and one by one
    together = first.embed(QUESTIONS)
    one_by_one = [second.embed([question])[0] for question in QUESTIONS]
    # Then the vectors are identical, bit for bit
    assert together == one_by_one


def test_vectors_are_unit_length_with_a_fixed_dimension() -> None:
    for vector in OfflineEmbedder().embed(QUESTIONS):
        assert len(vector) == DIMENSIONS
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("question", "paraphrase", "unrelated"),
    [
        (
            "Can I return a jacket I ordered?",
            "Is returning an ordered jacket possible?",
            "What are the opening hours of the Valencia shop?",
        ),
        (
            "¿Cómo devuelvo un pedido?",
            "¿Cómo funciona la devolución de pedidos?",
            "¿Cuánto pesa el hornillo Pika?",
        ),
        (
            "Wann liefert ihr nach Österreich?",
            "Wie lange dauert die Lieferung nach Österreich?",
            "Welche Farben hat die Monsoon?",
        ),
    ],
)
def test_a_paraphrase_scores_above_an_unrelated_question(
    question: str, paraphrase: str, unrelated: str
) -> None:
    assert similarity(question, paraphrase) > similarity(question, unrelated)
    assert similarity(question, unrelated) < 0.2


def test_a_negation_is_not_the_same_question() -> None:
    # "can't" and "not" are stopwords to the index; the embedder still sees them
    assert similarity("Which items can I return?", "Which items can't I return?") < 0.95
    assert similarity("¿Qué cubre la garantía?", "¿Qué no cubre la garantía?") < 0.95
    assert similarity("Was kann ich zurückgeben?", "Was kann ich nicht zurückgeben?") < 0.95


def test_case_accents_and_punctuation_do_not_matter() -> None:
    assert similarity("¿Cuánto cuesta el envío?", "cuanto cuesta el envio") == pytest.approx(1.0)


def test_a_text_without_words_is_similar_to_nothing() -> None:
    (empty,) = OfflineEmbedder().embed(["?!"])
    assert not any(empty)
    assert cosine(empty, OfflineEmbedder().embed(["Cirrus 2"])[0]) == 0.0
    assert OfflineEmbedder().embed([]) == []


def test_cosine_and_normalised() -> None:
    assert cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert cosine([3.0, 4.0], [6.0, 8.0]) == pytest.approx(1.0)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert normalised([3.0, 4.0]) == pytest.approx([0.6, 0.8])
    assert normalised([0.0, 0.0]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="different lengths"):
        cosine([1.0], [1.0, 0.0])


def _no_client(service: str, read_timeout: float | None = None) -> object:
    return object()


def test_the_registry_builds_each_supported_spec_without_calling_anything() -> None:
    # Given a client factory whose clients cannot be called
    # When each supported spec is built
    offline = embedder_for("offline", _no_client)
    titan = embedder_for("bedrock:amazon.titan-embed-text-v2:0", _no_client)
    cohere = embedder_for("bedrock:cohere.embed-multilingual-v3", _no_client)

    # Then each names its spec
    assert offline.spec == "offline"
    assert titan.spec == "bedrock:amazon.titan-embed-text-v2:0"
    assert cohere.spec == "bedrock:cohere.embed-multilingual-v3"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "offline:v2",
        "bedrock:",
        "openai:text-embedding-3-small",
        "bedrock:amazon.titan-embed-text-v1",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
    ],
)
def test_an_unknown_spec_is_a_configuration_error_naming_it(spec: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        embedder_for(spec, _no_client)
    message = str(raised.value)
    # the spec (or, for an unsupported Bedrock model, its id) and what is supported
    assert repr(spec) in message or repr(spec.removeprefix("bedrock:")) in message
    assert "titan-embed-text-v2" in message


def test_the_offline_embedder_does_not_import_boto3() -> None:
    # The semantic step's cold start: the offline path must not pay for the AWS SDK.
    probe = (
        "import sys\n"
        "from concierge.adapters.embeddings.registry import embedder_for\n"
        "embedder_for('offline', None).embed(['How much is shipping to Austria?'])\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
