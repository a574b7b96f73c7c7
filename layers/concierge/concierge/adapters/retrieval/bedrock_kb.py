"""Amazon Bedrock Knowledge Bases behind the retriever port (bedrock-agent-runtime `Retrieve`).

The classification becomes a metadata filter: the category and the language are `equals`
conditions on two attributes of the knowledge base's documents (`category` and `language` unless
configured otherwise), joined by `andAll` when both are given. The attributes come from each
document's `<name>.metadata.json` sidecar, which `concierge` ingestion writes next to it.

Errors (concierge.adapters.aws_errors, family KNOWLEDGE_BASE): throttling, 5xx and unreachable
endpoints raise `KnowledgeBaseThrottledError`, which the state machine retries once and the api
maps to 503 `knowledge_base_unavailable`. A read timeout raises `KnowledgeBaseTimeoutError` (504,
not retried: a second wait would outlast the step's 10-second task timeout). Everything else -
access denied, an unknown knowledge base, a rejected request - is a `RetrievalError` naming the
knowledge base and what to check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from concierge.adapters.aws_errors import KNOWLEDGE_BASE, AwsError, translated
from concierge.adapters.retrieval.port import Query, SearchFilter
from concierge.errors import ConciergeError, RetrievalError
from concierge.models.state import Passage

# What a retry will not fix, and what to check.
_FAIL_FAST_HINTS = {
    "accessdeniedexception": "the retrieve function's role needs bedrock:Retrieve on it "
    "(stack parameter KnowledgeBaseId), and the knowledge base's service role access to its "
    "embedding model and vector store",
    "resourcenotfoundexception": "no such knowledge base in this account and region "
    "(check KnowledgeBaseId and the stack's region)",
    "validationexception": "the request was rejected (check the metadata attribute names and "
    "the question's length)",
    "dependencyfailedexception": "its vector store or embedding model failed "
    "(check the knowledge base's data source and service role)",
}
# Written by Bedrock on every chunk: where the document came from.
_SOURCE_URI_ATTRIBUTE = "x-amz-bedrock-kb-source-uri"
# Read timeout of one Retrieve call: the step may relax its filter and search again (up to three
# rounds of calls), inside the Retrieve task's 10 s timeout in the state machine. A question and
# its translation are two calls of one round, made at the same time (`search_many`).
READ_TIMEOUT_S = 3.0


class BedrockKnowledgeBase:
    def __init__(
        self,
        knowledge_base_id: str,
        client: Any,
        *,
        category_attribute: str = "category",
        language_attribute: str = "language",
        category_map: Mapping[str, str] | None = None,
        concurrent: bool = True,
    ) -> None:
        """`client`: a bedrock-agent-runtime client with one attempt and `READ_TIMEOUT_S`;
        `concurrent`: whether `search_many` makes its calls at the same time (the contract
        tests make them in order, for botocore's Stubber)."""
        self.knowledge_base_id = knowledge_base_id
        self._client = client
        self._concurrent = concurrent
        self._category_attribute = category_attribute
        self._language_attribute = language_attribute
        self._labels = dict(category_map or {})
        # Back from the knowledge base's labels to our categories, where that is unambiguous.
        targets = list(self._labels.values())
        self._categories = {
            label: category for category, label in self._labels.items() if targets.count(label) == 1
        }

    def metadata_filter(self, search_filter: SearchFilter) -> dict[str, Any] | None:
        """The `RetrievalFilter` of a classification; None searches every document."""
        conditions = []
        if search_filter.category is not None:
            label = self._labels.get(search_filter.category, search_filter.category)
            conditions.append({"equals": {"key": self._category_attribute, "value": label}})
        if search_filter.language is not None:
            conditions.append(
                {"equals": {"key": self._language_attribute, "value": search_filter.language}}
            )
        if not conditions:
            return None
        # `andAll` takes two conditions or more: a single one stands alone.
        return conditions[0] if len(conditions) == 1 else {"andAll": conditions}

    def search(self, query: str, search_filter: SearchFilter, limit: int) -> list[Passage]:
        vector_search: dict[str, Any] = {"numberOfResults": limit}
        metadata_filter = self.metadata_filter(search_filter)
        if metadata_filter is not None:
            vector_search["filter"] = metadata_filter
        with translated(
            KNOWLEDGE_BASE, f"knowledge base {self.knowledge_base_id}", refine=_with_hint
        ):
            response = self._client.retrieve(
                knowledgeBaseId=self.knowledge_base_id,
                retrievalQuery={"text": query},
                retrievalConfiguration={"vectorSearchConfiguration": vector_search},
            )
        passages = (self._passage(result) for result in response.get("retrievalResults", []))
        return [passage for passage in passages if passage is not None]

    def search_many(self, queries: Sequence[Query], limit: int) -> list[list[Passage]]:
        """One Retrieve call per query, at the same time (botocore clients are thread-safe):
        two calls fit the budget of one, so a translated question costs no extra step time.
        The first failure is raised, as from `search`."""
        if len(queries) < 2 or not self._concurrent:
            return [self.search(query, search_filter, limit) for query, search_filter in queries]
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            futures = [pool.submit(self.search, query, f, limit) for query, f in queries]
            return [future.result() for future in futures]

    def _passage(self, result: Mapping[str, Any]) -> Passage | None:
        text = (result.get("content") or {}).get("text")
        if not text:
            return None  # images, table rows: nothing to quote or cite
        metadata = result.get("metadata") or {}
        source = _source(result, metadata)
        label = _as_text(metadata.get(self._category_attribute))
        return Passage(
            source=source,
            title=_as_text(metadata.get("title")) or source,
            text=text,
            category=self._categories.get(label, label),
            language=_as_text(metadata.get(self._language_attribute)),
            score=round(float(result.get("score") or 0.0), 4),
        )


def _source(result: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """The name the local index would give the document: the `source` attribute ingestion
    writes (a PDF is stored as `<name>.md` but cited as `<name>`), else the file name of its
    S3 object; a web page keeps its URL."""
    if declared := _as_text(metadata.get("source")):
        return declared
    location = result.get("location") or {}
    uri = (
        (location.get("s3Location") or {}).get("uri")
        or _as_text(metadata.get(_SOURCE_URI_ATTRIBUTE))
        or (location.get("webLocation") or {}).get("url")
        or ""
    )
    if uri.startswith("s3://"):
        return uri.rstrip("/").rsplit("/", 1)[-1]
    return uri or "unknown"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _with_hint(exc: ClientError, error: AwsError, what: str) -> ConciergeError | None:
    """A rejection names what to check; throttling and timeouts keep the common reading."""
    if error.retryable or error.timed_out:
        return None
    hint = _FAIL_FAST_HINTS.get(error.code, "a retry will not help")
    return RetrievalError(f"{what} cannot be searched ({error.describe()}): {hint}")
