"""Wiring for the Lambda handlers: settings and adapters per step, built once per container."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from concierge.errors import ConfigurationError, InvalidStepInputError

if TYPE_CHECKING:
    from concierge.adapters.retrieval.local_index import LocalIndex
    from concierge.adapters.retrieval.port import Retriever
    from concierge.config import RetrieveSettings

M = TypeVar("M", bound=BaseModel)


def parse_event(model: type[M], event: Any) -> M:
    """Validate a step's input; the error name tells Step Functions (and people) what broke."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidStepInputError(f"{model.__name__}: invalid fields: {fields}") from None


def retriever_from(settings: RetrieveSettings) -> Retriever:
    """The backend the settings choose. Each imports only its own adapter: a cold start with a
    knowledge base does not load the local index's code, nor the other way round."""
    if settings.retriever == "bedrock-kb":
        from concierge.adapters.retrieval.bedrock_kb import BedrockKnowledgeBase

        if settings.knowledge_base_id is None:
            raise ConfigurationError("CONCIERGE_KNOWLEDGE_BASE_ID is not set")
        # Cheap to build (no I/O): its client comes from the cached factory.
        return BedrockKnowledgeBase(
            settings.knowledge_base_id,
            category_attribute=settings.knowledge_base_category_attribute,
            language_attribute=settings.knowledge_base_language_attribute,
            category_map=dict(settings.knowledge_base_category_map),
        )
    if settings.index_uri is None:
        raise ConfigurationError("CONCIERGE_INDEX_URI is not set")
    return retriever_for(settings.index_uri)


@cache
def retriever_for(index_uri: str) -> LocalIndex:
    """The local index at `index_uri`, loaded once per container."""
    from concierge.adapters.retrieval.local_index import load_index

    return load_index(index_uri)


@cache
def embedder_for(spec: str) -> Any:
    """The semantic tier's embedder, built once per container."""
    from concierge.adapters.embeddings.registry import embedder_for as build

    return build(spec)


def chain_executor(settings: Any) -> Any:
    """The executor the settings ask for, over the factory's Step Functions client."""
    from concierge.adapters.aws import aws_client
    from concierge.adapters.executor import PollingExecutor, SyncExecutor

    client = aws_client("stepfunctions")
    if settings.execution_mode == "poll":
        return PollingExecutor(client, settings.state_machine_arn)
    return SyncExecutor(client, settings.state_machine_arn)
