"""The Bedrock Knowledge Bases contract (bedrock-agent-runtime Retrieve), checked by botocore's
Stubber against the service model: the request each classification sends, how results become
passages, and which error the state machine sees for each failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from concierge import wiring
from concierge.adapters.retrieval import bedrock_kb
from concierge.adapters.retrieval.bedrock_kb import BedrockKnowledgeBase
from concierge.adapters.retrieval.port import SearchFilter
from concierge.errors import (
    KnowledgeBaseThrottledError,
    KnowledgeBaseTimeoutError,
    RetrievalError,
)
from concierge.models.state import RetrieveInput
from concierge.steps.retrieve import retrieve

KB_ID = "KBTEST1234"
QUESTION = "How long is the warranty on tents?"
DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "chat.asl.json"


@pytest.fixture
def agent_runtime() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-agent-runtime",
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expected_request(
    vector_search_filter: dict[str, Any] | None, limit: int = 4, query: str = QUESTION
) -> dict[str, Any]:
    vector_search: dict[str, Any] = {"numberOfResults": limit}
    if vector_search_filter is not None:
        vector_search["filter"] = vector_search_filter
    return {
        "knowledgeBaseId": KB_ID,
        "retrievalQuery": {"text": query},
        "retrievalConfiguration": {"vectorSearchConfiguration": vector_search},
    }


def equals(key: str, value: str) -> dict[str, Any]:
    return {"equals": {"key": key, "value": value}}


def s3_result(
    name: str,
    text: str,
    score: float,
    *,
    category: str = "policies",
    language: str = "en",
    stored_as: str | None = None,
) -> dict[str, Any]:
    """One result as Bedrock returns it for an S3 data source whose metadata sidecar ingestion
    wrote (`concierge ingest --target s3://…` stores a PDF's text as `<name>.md`)."""
    uri = f"s3://concierge-docs/knowledge/documents/{stored_as or name}"
    return {
        "content": {"type": "TEXT", "text": text},
        "location": {"type": "S3", "s3Location": {"uri": uri}},
        "score": score,
        "metadata": {
            "x-amz-bedrock-kb-source-uri": uri,
            "x-amz-bedrock-kb-chunk-id": "1%3A0%3Aabc",
            "x-amz-bedrock-kb-data-source-id": "DS12345678",
            "category": category,
            "language": language,
            "title": name.removesuffix(".md").replace("-", " ").title(),
            "source": name,
        },
    }


def retry_errors_of_the_retrieve_state() -> set[str]:
    """The error names the deployed definition retries on the Retrieve task."""
    states = json.loads(DEFINITION.read_text(encoding="utf-8"))["States"]
    return {name for retry in states["Retrieve"]["Retry"] for name in retry["ErrorEquals"]}


# -- requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search_filter", "expected_filter"),
    [
        pytest.param(
            SearchFilter(category="policies", language="en"),
            {"andAll": [equals("category", "policies"), equals("language", "en")]},
            id="category+language",
        ),
        pytest.param(SearchFilter(language="es"), equals("language", "es"), id="language"),
        pytest.param(
            SearchFilter(category="support"), equals("category", "support"), id="category"
        ),
        pytest.param(SearchFilter(), None, id="none"),
    ],
)
def test_each_classification_sends_its_metadata_filter(
    agent_runtime: tuple[Any, Stubber],
    search_filter: SearchFilter,
    expected_filter: dict[str, Any] | None,
) -> None:
    # Given a knowledge base with the default attribute names, and Retrieve expecting the
    # request with the classification's metadata filter
    client, stubber = agent_runtime
    stubber.add_response("retrieve", {"retrievalResults": []}, expected_request(expected_filter))
    kb = BedrockKnowledgeBase(KB_ID, client)

    # When it is searched with the filter
    found = kb.search(QUESTION, search_filter, 4)

    # Then the request was exactly the expected one (Stubber compares the parameters, and
    # validates them against the service model), and nothing was found
    stubber.assert_no_pending_responses()
    assert found == []


def test_categories_are_mapped_to_the_knowledge_base_labels_and_attribute_names_configured(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given a knowledge base whose documents say `topic` and `lang`, with its own labels
    client, stubber = agent_runtime
    kb = BedrockKnowledgeBase(
        KB_ID,
        client,
        category_attribute="topic",
        language_attribute="lang",
        category_map={"products": "catalogue", "pricing": "prices"},
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": []},
        expected_request({"andAll": [equals("topic", "catalogue"), equals("lang", "de")]}, limit=6),
    )
    # A category the map does not list is looked up as it is
    stubber.add_response(
        "retrieve", {"retrievalResults": []}, expected_request(equals("topic", "support"))
    )

    # When it is searched for a mapped category and an unmapped one
    found = [
        kb.search(QUESTION, SearchFilter(category="products", language="de"), 6),
        kb.search(QUESTION, SearchFilter(category="support"), 4),
    ]

    # Then both requests went out exactly as expected (Stubber compares them) and found nothing
    stubber.assert_no_pending_responses()
    assert found == [[], []]


# -- responses -------------------------------------------------------------------------------


def test_results_become_passages_with_source_title_metadata_and_score(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given results of ingested documents (one stored under another name than it was ingested
    # as) and of a document of another tool, with no title and no source attribute in its
    # metadata
    client, stubber = agent_runtime
    untitled = s3_result("returns.md", "Returns are free for 30 days.", 0.61)
    del untitled["metadata"]["title"], untitled["metadata"]["source"]
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                s3_result("warranty-policy.md", "Tents carry a two-year warranty.", 0.8312345),
                untitled,
                s3_result("manual.pdf", "Pitch the tent.", 0.5, stored_as="manual.pdf.md"),
            ]
        },
        expected_request(None),
    )

    # When the knowledge base is searched
    passages = BedrockKnowledgeBase(KB_ID, client).search(QUESTION, SearchFilter(), 4)

    # Then each result is a passage with its source, title, text, metadata and rounded score
    assert [p.model_dump() for p in passages] == [
        {
            "source": "warranty-policy.md",
            "title": "Warranty Policy",
            "text": "Tents carry a two-year warranty.",
            "category": "policies",
            "language": "en",
            "score": 0.8312,
        },
        {
            # The file name of the S3 object, which also stands in for the missing title
            "source": "returns.md",
            "title": "returns.md",
            "text": "Returns are free for 30 days.",
            "category": "policies",
            "language": "en",
            "score": 0.61,
        },
        {
            # Cited by the name ingestion gave it (as the local index does), not the stored key
            "source": "manual.pdf",
            "title": "Manual.Pdf",
            "text": "Pitch the tent.",
            "category": "policies",
            "language": "en",
            "score": 0.5,
        },
    ]


def test_labels_map_back_to_categories_and_sources_fall_back_to_metadata(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given results without an S3 location (the source URI only in the metadata), a web page,
    # and a non-text result (a table row) that cannot be quoted
    client, stubber = agent_runtime
    only_metadata = s3_result("tents.md", "The Alpine tent sleeps two.", 0.7, category="catalogue")
    del only_metadata["location"], only_metadata["metadata"]["source"]
    web_page = {
        "content": {"type": "TEXT", "text": "Opening hours: 9 to 5."},
        "location": {"type": "WEB", "webLocation": {"url": "https://example.com/contact"}},
        "score": 0.5,
        "metadata": {"category": "company", "language": "en"},
    }
    row = {
        "content": {"type": "ROW", "row": [{"columnName": "sku", "type": "STRING"}]},
        "score": 0.9,
    }
    stubber.add_response(
        "retrieve", {"retrievalResults": [only_metadata, web_page, row]}, expected_request(None)
    )
    kb = BedrockKnowledgeBase(KB_ID, client, category_map={"products": "catalogue"})

    # When a knowledge base with its own category labels is searched
    passages = kb.search(QUESTION, SearchFilter(), 4)

    # Then the labels map back to categories, the sources come from the metadata and the web
    # location, and the row is left out
    assert [(p.source, p.category, p.title) for p in passages] == [
        ("tents.md", "products", "Tents"),
        ("https://example.com/contact", "company", "https://example.com/contact"),
    ]


# -- through the retrieve step ---------------------------------------------------------------


def test_the_step_relaxes_the_filter_against_the_knowledge_base(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given a knowledge base with nothing under the classification's category in English
    client, stubber = agent_runtime
    stubber.add_response(
        "retrieve",
        {"retrievalResults": []},
        expected_request({"andAll": [equals("category", "pricing"), equals("language", "en")]}),
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("warranty-policy.md", "Two years.", 0.7)]},
        expected_request(None),
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("warranty-policy.md", "Two years.", 0.7)]},
        expected_request(equals("language", "en")),
    )
    request = RetrieveInput(
        request_id="r1",
        question=QUESTION,
        category="pricing",
        language="en",
        deadline_ms=4_102_444_800_000,
    )

    # When the step runs against it
    result = retrieve(request, BedrockKnowledgeBase(KB_ID, client), 4)

    # Then, after the classification's filter and the search without one (its check), it
    # widened to the language filter and stopped there
    stubber.assert_no_pending_responses()
    assert result.filter_used == "language"
    assert [p.source for p in result.passages] == ["warranty-policy.md"]


def test_passages_below_the_minimum_score_are_dropped_and_the_filter_relaxed(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given only weak matches under the classification's filter, and a good one without it
    client, stubber = agent_runtime
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("faq.md", "Weak.", 0.21)]},
        expected_request({"andAll": [equals("category", "policies"), equals("language", "en")]}),
    )
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                s3_result("warranty-policy.md", "Two years.", 0.72),
                s3_result("faq.md", "Weak.", 0.39),
            ]
        },
        expected_request(None),
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("faq.md", "Still weak.", 0.3)]},
        expected_request(equals("language", "en")),
    )
    request = RetrieveInput(
        request_id="r1",
        question=QUESTION,
        category="policies",
        language="en",
        deadline_ms=4_102_444_800_000,
    )

    # When the step runs with a minimum score of 0.4
    result = retrieve(request, BedrockKnowledgeBase(KB_ID, client), 4, min_score=0.4)

    # Then only the passage above it is kept, found without a filter (that search, made with
    # the first, is not made again)
    stubber.assert_no_pending_responses()
    assert result.filter_used == "none"
    assert [(p.source, p.score) for p in result.passages] == [("warranty-policy.md", 0.72)]


def test_settings_select_the_knowledge_base_through_the_client_factory(
    agent_runtime: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment configured for a knowledge base with its own labels
    client, stubber = agent_runtime
    factory_calls: list[tuple[str, float | None]] = []

    def factory(service: str, read_timeout: float | None = None) -> Any:
        factory_calls.append((service, read_timeout))
        return client

    monkeypatch.setattr(wiring, "aws_client", factory)
    for name, value in {
        "CONCIERGE_RETRIEVER": "bedrock-kb",
        "CONCIERGE_KNOWLEDGE_BASE_ID": KB_ID,
        "CONCIERGE_KNOWLEDGE_BASE_CATEGORY_MAP": "products=catalogue",
        "CONCIERGE_INDEX_URI": "",
    }.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                s3_result("tents.md", "Two-person tent.", 0.9, category="catalogue")
            ]
        },
        expected_request({"andAll": [equals("category", "catalogue"), equals("language", "en")]}),
    )

    # When the composition root builds the retriever and it searches
    try:
        passages = wiring.retriever().search(
            QUESTION, SearchFilter(category="products", language="en"), 4
        )
    finally:
        wiring.reset()

    # Then the client came from the factory, with a read timeout (one attempt, inside the budget)
    assert factory_calls == [("bedrock-agent-runtime", bedrock_kb.READ_TIMEOUT_S)]
    assert [(p.source, p.category) for p in passages] == [("tents.md", "products")]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("throttlingException", 429),  # codes are matched case-insensitively
        ("InternalServerException", 500),
        ("BadGatewayException", 502),
        ("ServiceUnavailableException", 503),
        ("SomethingNewException", 504),  # any 5xx
    ],
)
def test_throttling_and_5xx_raise_the_error_the_state_machine_retries(
    agent_runtime: tuple[Any, Stubber], code: str, status: int
) -> None:
    # Given Retrieve throttled or failing on the service's side
    client, stubber = agent_runtime
    stubber.add_client_error("retrieve", code, "slow down", http_status_code=status)
    kb = BedrockKnowledgeBase(KB_ID, client)

    # When / Then searching raises the throttled error, naming the knowledge base
    with pytest.raises(KnowledgeBaseThrottledError, match=KB_ID) as raised:
        kb.search(QUESTION, SearchFilter(language="en"), 4)

    # And the state machine retries that error
    assert type(raised.value).__name__ in retry_errors_of_the_retrieve_state()


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        ("ValidationException", 400, "rejected"),
        ("AccessDeniedException", 403, "bedrock:Retrieve"),
        ("ResourceNotFoundException", 404, "KnowledgeBaseId"),
        ("DependencyFailedException", 424, "vector store"),
        ("ServiceQuotaExceededException", 400, "retry will not help"),
    ],
)
def test_client_errors_fail_fast_naming_the_knowledge_base(
    agent_runtime: tuple[Any, Stubber], code: str, status: int, hint: str
) -> None:
    # Given Retrieve rejecting the request, with details that may quote the question
    client, stubber = agent_runtime
    stubber.add_client_error(
        "retrieve", code, f"details that may quote {QUESTION}", http_status_code=status
    )
    kb = BedrockKnowledgeBase(KB_ID, client)

    # When searching fails
    with pytest.raises(RetrievalError) as raised:
        kb.search(QUESTION, SearchFilter(language="en"), 4)

    # Then the error names the knowledge base, the code and a hint, without AWS's message (it
    # may quote the question)
    message = str(raised.value)
    assert KB_ID in message
    assert code in message
    assert hint in message
    assert QUESTION not in message
    # And the state machine does not retry it
    assert type(raised.value).__name__ not in retry_errors_of_the_retrieve_state()


class _FailingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def retrieve(self, **arguments: Any) -> dict[str, Any]:
        raise self.error


def test_a_read_timeout_is_a_timeout_and_an_unreachable_endpoint_is_retryable() -> None:
    # Given a knowledge base whose reads time out, and one whose endpoint cannot be reached
    slow = BedrockKnowledgeBase(
        KB_ID, _FailingClient(ReadTimeoutError(endpoint_url="https://bedrock-agent-runtime"))
    )
    unreachable = BedrockKnowledgeBase(
        KB_ID, _FailingClient(EndpointConnectionError(endpoint_url="https://bedrock-agent-runtime"))
    )

    # When / Then searching the first raises a timeout, the second the throttled error, both
    # naming the knowledge base
    with pytest.raises(KnowledgeBaseTimeoutError, match=KB_ID):
        slow.search(QUESTION, SearchFilter(), 4)
    with pytest.raises(KnowledgeBaseThrottledError, match=KB_ID) as raised:
        unreachable.search(QUESTION, SearchFilter(), 4)
    # And the state machine retries the second
    assert type(raised.value).__name__ in retry_errors_of_the_retrieve_state()


# -- cross-language --------------------------------------------------------------------------


def test_a_translated_question_is_searched_twice_and_the_rankings_fused(
    agent_runtime: tuple[Any, Stubber],
) -> None:
    # Given a German question with its English translation, and Retrieve expecting the question
    # under the category and German, then the translation under the category alone, then both
    # without a filter (the check of the classification)
    client, stubber = agent_runtime
    german = "Wie lange gilt die Garantie auf Zelte?"
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("de-zelte.md", "Zelte: 1,9 kg.", 0.41, language="de")]},
        expected_request(
            {"andAll": [equals("category", "policies"), equals("language", "de")]}, query=german
        ),
    )
    stubber.add_response(
        "retrieve",
        {
            "retrievalResults": [
                s3_result("warranty-policy.md", "Tents carry a two-year warranty.", 0.83),
                s3_result("de-zelte.md", "Zelte: 1,9 kg.", 0.40, language="de"),
            ]
        },
        expected_request(equals("category", "policies"), query=QUESTION),
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("de-zelte.md", "Zelte: 1,9 kg.", 0.41, language="de")]},
        expected_request(None, query=german),
    )
    stubber.add_response(
        "retrieve",
        {"retrievalResults": [s3_result("warranty-policy.md", "Two years.", 0.8)]},
        expected_request(None, query=QUESTION),
    )
    request = RetrieveInput(
        request_id="r1",
        question=german,
        category="policies",
        language="de",
        deadline_ms=4_102_444_800_000,
        search_query=QUESTION,
    )

    # When the step runs against the knowledge base (its calls in order, for the Stubber)
    result = retrieve(request, BedrockKnowledgeBase(KB_ID, client, concurrent=False), 4)

    # Then the four requests went out as expected, and the passage both found leads the
    # fusion under the classification's filter (the search without it agrees)
    stubber.assert_no_pending_responses()
    assert result.filter_used == "category+language"
    assert [p.source for p in result.passages] == ["de-zelte.md", "warranty-policy.md"]
    assert 1.0 > result.passages[0].score > result.passages[1].score > 0
