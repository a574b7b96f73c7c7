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
    # When questions in several languages are embedded
    vectors = OfflineEmbedder().embed(QUESTIONS)

    # Then every vector has the same dimension and length one
    for vector in vectors:
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
    # Given a question, a paraphrase of it and an unrelated question in the same language
    # When the question is compared with each
    to_paraphrase = similarity(question, paraphrase)
    to_unrelated = similarity(question, unrelated)

    # Then the paraphrase is closer, and the unrelated question is far away
    assert to_paraphrase > to_unrelated
    assert to_unrelated < 0.2


def test_a_negation_is_not_the_same_question() -> None:
    # Given questions and their negations ("can't" and "not" are stopwords to the index; the
    # embedder still sees them)
    # When each question is compared with its negation
    english = similarity("Which items can I return?", "Which items can't I return?")
    spanish = similarity("¿Qué cubre la garantía?", "¿Qué no cubre la garantía?")
    german = similarity("Was kann ich zurückgeben?", "Was kann ich nicht zurückgeben?")

    # Then none of the pairs is near-identical
    assert english < 0.95
    assert spanish < 0.95
    assert german < 0.95


def test_case_accents_and_punctuation_do_not_matter() -> None:
    # When a question is compared with itself without case, accents or punctuation
    score = similarity("¿Cuánto cuesta el envío?", "cuanto cuesta el envio")

    # Then they are the same vector
    assert score == pytest.approx(1.0)


def test_a_text_without_words_is_similar_to_nothing() -> None:
    # When a text of punctuation only is embedded
    (empty,) = OfflineEmbedder().embed(["?!"])

    # Then its vector is all zeros, similar to nothing
    assert not any(empty)
    assert cosine(empty, OfflineEmbedder().embed(["Cirrus 2"])[0]) == 0.0

    # And no texts at all give no vectors
    assert OfflineEmbedder().embed([]) == []


def test_cosine_and_normalised_ignore_scale_and_leave_a_zero_vector_alone() -> None:
    # When orthogonal, parallel and zero vectors are compared
    orthogonal = cosine([1.0, 0.0], [0.0, 2.0])
    parallel = cosine([3.0, 4.0], [6.0, 8.0])
    with_zero = cosine([0.0, 0.0], [1.0, 0.0])

    # Then only direction counts, and a zero vector is similar to nothing
    assert orthogonal == 0.0
    assert parallel == pytest.approx(1.0)
    assert with_zero == 0.0

    # When a vector and a zero vector are normalised
    unit = normalised([3.0, 4.0])
    zero = normalised([0.0, 0.0])

    # Then the first gets length one and the zero vector stays zero
    assert unit == pytest.approx([0.6, 0.8])
    assert zero == [0.0, 0.0]

    # When / Then vectors of different lengths cannot be compared
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
    # When an embedder is asked for a spec that is not supported
    with pytest.raises(ConfigurationError) as raised:
        embedder_for(spec, _no_client)

    # Then the configuration error names the spec (or, for an unsupported Bedrock model, its
    # id) and what is supported
    message = str(raised.value)
    assert repr(spec) in message or repr(spec.removeprefix("bedrock:")) in message
    assert "titan-embed-text-v2" in message


def test_the_offline_embedder_does_not_import_boto3() -> None:
    # Given a fresh interpreter (the semantic step's cold start: the offline path must not pay
    # for the AWS SDK)
    probe = (
        "import sys\n"
        "from concierge.adapters.embeddings.registry import embedder_for\n"
        "embedder_for('offline', None).embed(['How much is shipping to Austria?'])\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )

    # When it builds the offline embedder and embeds a question
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()

    # Then neither boto3 nor botocore has been imported
    assert loaded == "[]"
