"""Settings, read once from the environment into pydantic models.

Each handler loads only the group it needs; logic receives settings as arguments and never
reads `os.environ` itself. Required settings have no defaults: a missing one is a clear
`ConfigurationError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Json,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from concierge.errors import ConfigurationError

ENV_PREFIX = "CONCIERGE_"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _empty_is_none(value: object) -> object:
    # CloudFormation cannot leave a variable out, only set it to "": read that as not set.
    return None if value == "" else value


OptionalText = Annotated[str | None, BeforeValidator(_empty_is_none)]


class ApiSettings(_Settings):
    """The `api` function: validates requests and runs the chain."""

    state_machine_arn: str
    # `sync` = StartSyncExecution (Express, in AWS). `poll` = StartExecution + DescribeExecution,
    # for emulators and Standard workflows that have no synchronous start.
    execution_mode: Literal["sync", "poll"] = "sync"
    cache_ttl_seconds: int = Field(default=86_400, ge=60)
    history_ttl_seconds: int = Field(default=604_800, ge=60)
    request_budget_ms: int = Field(default=27_000, ge=1_000, le=29_000)
    max_body_bytes: int = 65_536
    kb_version: str = "1"
    # Part of every cache key: a new answer model never serves the old model's answers.
    answer_model: str
    # The latest turns of a session loaded for condense (the prompt trims them to a budget).
    history_turns: int = Field(default=6, ge=1, le=50)
    # The tables, for DELETE /sessions/{id} (the chain itself reaches them from the ASL).
    history_table: OptionalText = None
    cache_table: OptionalText = None
    # The semantic tier of the cache (SemanticCacheSettings): the chain runs it only when on.
    semantic_cache: bool = False


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# "a, b,,c" -> ("a", "b", "c"); an empty string is an empty list.
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]


class CategorySettings(_Settings):
    """The categories a question can be routed to: classify (first turns) and condense
    (follow-ups) both classify, so both read these."""

    categories: CommaList
    default_category: str = "general"


class ClassifySettings(CategorySettings):
    # Model specs: `offline`, `bedrock:<id>`, `sagemaker:<endpoint>:<messages|inputs>`,
    # `openai:<model>`. The fallbacks are tried in order when the primary is unavailable.
    classify_model: str
    classify_fallbacks: CommaList = ()


class CondenseSettings(CategorySettings):
    condense_model: str
    condense_fallbacks: CommaList = ()
    history_turns: int = Field(default=6, ge=1, le=50)
    # Of those turns, the newest that fit this many (estimated) tokens go into the prompt.
    history_tokens: int = Field(default=1_200, ge=100, le=20_000)


class RetrieveSettings(_Settings):
    """The retrieve step: which backend searches the knowledge, and how.

    `local` searches the index file written by `concierge ingest`; `bedrock-kb` an Amazon Bedrock
    knowledge base, whose documents carry the category and language as metadata attributes.
    """

    retriever: Literal["local", "bedrock-kb"] = "local"
    # local: a path or s3://bucket/key of the index written by `concierge ingest`.
    index_uri: str | None = Field(default=None, validate_default=True)
    # bedrock-kb: the knowledge base id (10 characters; IAM grants exactly this one).
    knowledge_base_id: str | None = Field(
        default=None, validate_default=True, pattern=r"^[0-9A-Za-z]{10}$"
    )
    # Metadata attributes of the knowledge base's documents the filter compares with.
    knowledge_base_category_attribute: str = Field(default="category", min_length=1)
    knowledge_base_language_attribute: str = Field(default="language", min_length=1)
    # Where the knowledge base labels a category differently: "products=catalogue,pricing=prices"
    # (our category=its label). Categories not listed are looked up as they are.
    knowledge_base_category_map: tuple[tuple[str, str], ...] = ()
    top_k: int = Field(default=4, ge=1, le=20)
    # Passages scoring below this are dropped before the filter is relaxed. The backend's own
    # scale: BM25 (unbounded, grows with matching terms) or the knowledge base's relevance score.
    min_score: float | None = Field(default=None, ge=0)

    @field_validator("index_uri", "knowledge_base_id", "min_score", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # CloudFormation cannot leave a variable out, only set it to "".
        return None if value == "" else value

    @field_validator("index_uri")
    @classmethod
    def _local_needs_an_index(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("retriever") == "local":
            raise ValueError("required when CONCIERGE_RETRIEVER is local")
        return value

    @field_validator("knowledge_base_id")
    @classmethod
    def _bedrock_needs_an_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("retriever") == "bedrock-kb":
            raise ValueError("required when CONCIERGE_RETRIEVER is bedrock-kb")
        return value

    @field_validator("knowledge_base_category_map", mode="before")
    @classmethod
    def _category_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            category, separator, label = (side.strip() for side in item.partition("="))
            if not (separator and category and label):
                raise ValueError(f"{item!r} is not category=label")
            if category in pairs:
                raise ValueError(f"category {category!r} is mapped twice")
            pairs[category] = label
        return tuple(pairs.items())


class AnswerSettings(_Settings):
    answer_model: str
    answer_fallbacks: CommaList = ()


class Price(_Settings):
    """USD per 1,000 tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class ModelRuntimeSettings(_Settings):
    """How model calls are made, whichever step makes them."""

    # Attempts on one model before handing over to the next in the route (1 = no retry).
    model_attempts: int = Field(default=2, ge=1, le=5)
    retry_base_delay_ms: int = Field(default=200, ge=0)
    retry_max_delay_ms: int = Field(default=2_000, ge=0)
    # Extra prices or overrides of prices.toml, as JSON: {"<spec>": {"input": 0.003, "output": 0.015}}.
    model_prices: Annotated[Json[dict[str, Price]] | None, BeforeValidator(_empty_is_none)] = None
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_api_key: OptionalText = None
    bedrock_guardrail_id: OptionalText = None
    bedrock_guardrail_version: str = "DRAFT"
    # `optimized` asks Bedrock for latency-optimised inference where the model offers it.
    bedrock_latency: Literal["standard", "optimized"] = "standard"


class SemanticCacheSettings(_Settings):
    """The semantic tier of the answer cache (concierge.semantic_cache): off by default.

    Measure false hits with `python -m bench.run --only semantic` before turning it on: a
    question that differs in one word ("to Austria" / "to Spain") can score very close."""

    semantic_cache: bool = False
    # Embedder spec: `offline` (lexical, no network) or `bedrock:<embedding model id>`.
    embedding_model: str = "offline"
    semantic_threshold: float = Field(default=0.97, gt=0, le=1)
    cache_table: OptionalText = None


S = TypeVar("S", bound=_Settings)


def load(model: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build `model` from CONCIERGE_* variables (field `cache_ttl_seconds` ← CONCIERGE_CACHE_TTL_SECONDS)."""
    source = os.environ if environ is None else environ
    values = {
        name: source[ENV_PREFIX + name.upper()]
        for name in model.model_fields
        if ENV_PREFIX + name.upper() in source
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings for {model.__name__}: {problems}") from None


@cache
def get_settings(model: type[S]) -> S:
    """The process-wide settings of one group, read once (Lambda containers reuse them)."""
    return load(model)
