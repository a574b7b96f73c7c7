"""Settings: one pydantic model per group of CONCIERGE_* variables.

`load` builds a group from a mapping of variables; only the composition root
(`concierge.wiring`) calls it, with the process environment. Each setting lives in exactly one
group, and a function that needs several groups loads several. Required settings have no
defaults: a missing one is a `ConfigurationError` naming the variable.

Optional values have one mechanism: a variable that is unset or empty ("" is all CloudFormation
can write for "not set") is left out, so the field takes its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Json,
    ValidationError,
    field_validator,
    model_validator,
)

from concierge.errors import ConfigurationError
from concierge.pricing import Price

ENV_PREFIX = "CONCIERGE_"


class SettingsGroup(BaseModel):
    # defer_build: a function builds the validators of the groups it loads, not of all of them.
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# "a, b,,c" -> ("a", "b", "c").
CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_separated)]


class ApiSettings(SettingsGroup):
    """The `api` function: validates requests and runs the chain."""

    state_machine_arn: str
    # `sync` = StartSyncExecution (Express, in AWS). `poll` = StartExecution + DescribeExecution,
    # for emulators and Standard workflows that have no synchronous start.
    execution_mode: Literal["sync", "poll"] = "sync"
    cache_ttl_seconds: int = Field(default=86_400, ge=60)
    history_ttl_seconds: int = Field(default=604_800, ge=60)
    # How long a rating of an answer (POST /feedback) is kept: 90 days.
    feedback_ttl_seconds: int = Field(default=7_776_000, ge=60)
    request_budget_ms: int = Field(default=27_000, ge=1_000, le=29_000)
    max_body_bytes: int = 65_536
    kb_version: str = "1"
    # Which environment's prompt versions and A/B variants to serve (prompts/labels.toml,
    # prompts/variants.toml): the stack's Stage.
    prompt_label: str = "dev"
    # Another variants file than prompts/variants.toml (an evaluation's own variants).
    variants_file: str | None = None
    # The latest turns of a session the chain loads for condense (which trims them to a budget).
    history_turns: int = Field(default=6, ge=1, le=50)
    # The semantic tier of the cache: the chain runs it only when on.
    semantic_cache: bool = False
    # Who is an admin: the claim listing a user's groups (API Gateway passes the verified
    # token's claims), and the group in it that makes one.
    admin_claim: str = "cognito:groups"
    admin_group: str = "admin"
    # Per-user daily limits (0 = none), checked before a request's first model call.
    daily_token_limit: int = Field(default=0, ge=0)
    daily_usd_limit: float = Field(default=0, ge=0)
    # What a request reserves against them until it settles: at least the most one request
    # can spend (classify or condense, and the answer, prompts and replies), or concurrent
    # requests may overshoot a limit by more than one request.
    request_token_reserve: int = Field(default=8_000, ge=1)


class TableSettings(SettingsGroup):
    """The tables, for the code that reaches them outside the state machine's own tasks:
    DELETE /sessions/{id}, POST /feedback, the semantic tier and the admin commands."""

    history_table: str | None = None
    cache_table: str | None = None
    budget_table: str | None = None
    # Users' ratings of their answers (POST /feedback; `concierge feedback report`).
    feedback_table: str | None = None


class CategorySettings(SettingsGroup):
    """The categories a question can be routed to: classify (first turns) and condense
    (follow-ups) both classify, so both read these.

    The categories and their descriptions are the knowledge base's (`concierge ingest` records
    them in the index, and in `categories.json` beside the documents it publishes to S3)."""

    # An override: only these of the knowledge base's categories, in this order (empty: all).
    categories: CommaList = ()
    # What a question that fits none of them is routed to (a search without a category).
    default_category: str = "general"
    # Where the categories are read from when it is not the local index: the `categories.json`
    # of a Bedrock knowledge base (a path or s3://bucket/key).
    catalog_uri: str | None = None


class CascadeSettings(SettingsGroup):
    """The classify step's local classifier (concierge.steps.cascade): the categories of the
    top passages of the local index vote, and the model is asked only when the vote is not
    clear. Off, or with a Bedrock knowledge base, every first turn asks the model."""

    local_classifier: Literal["on", "off"] = "on"
    # The share of the vote the winning category needs (calibrated: BENCHMARKS.md, "cascade").
    local_confidence: float = Field(default=0.9, gt=0, le=1)

    @property
    def on(self) -> bool:
        return self.local_classifier == "on"


# Model specs: `offline`, `bedrock:<id>`, `sagemaker:<endpoint>:<messages|inputs>`,
# `openai:<model>`. The fallbacks are tried in order when the primary is unavailable.
class ClassifyRoute(SettingsGroup):
    classify_model: str
    classify_fallbacks: CommaList = ()


class CondenseRoute(SettingsGroup):
    condense_model: str
    condense_fallbacks: CommaList = ()


class AnswerRoute(SettingsGroup):
    # Also part of every cache key: a new answer model never serves the old model's answers.
    answer_model: str
    answer_fallbacks: CommaList = ()


class CondenseSettings(SettingsGroup):
    # Of the turns the chain loaded, the newest that fit this many (estimated) tokens go into
    # the prompt.
    history_tokens: int = Field(default=1_200, ge=100, le=20_000)


class RetrieveSettings(SettingsGroup):
    """The retrieve step: which backend searches the knowledge, and how.

    `local` searches the index file written by `concierge ingest`; `bedrock-kb` an Amazon Bedrock
    knowledge base (`KnowledgeBaseSettings`), whose documents carry the category and language as
    metadata attributes.
    """

    retriever: Literal["local", "bedrock-kb"] = "local"
    # local: a path or s3://bucket/key of the index written by `concierge ingest`.
    index_uri: str | None = None
    top_k: int = Field(default=4, ge=1, le=20)
    # Passages scoring below this are dropped before the filter is relaxed. The backend's own
    # scale: the local index's fused score (0..1; BM25 with search_mode lexical, cosine with
    # dense) or the knowledge base's relevance score.
    min_score: float | None = Field(default=None, ge=0)
    # local: BM25 and the dense vectors fused (when the index has vectors and the dense extra
    # is installed, else lexical), or one of them alone.
    search_mode: Literal["fused", "lexical", "dense"] = "fused"

    @model_validator(mode="after")
    def _local_needs_an_index(self) -> Self:
        if self.retriever == "local" and self.index_uri is None:
            raise ValueError("CONCIERGE_INDEX_URI is required when CONCIERGE_RETRIEVER is local")
        return self


class KnowledgeBaseSettings(SettingsGroup):
    """An Amazon Bedrock knowledge base: searched by the retrieve step (CONCIERGE_RETRIEVER
    bedrock-kb), synchronised by `concierge ingest --target s3://…`."""

    # The knowledge base id (10 characters; IAM grants exactly this one).
    knowledge_base_id: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{10}$")
    # Its S3 data source, for the ingestion job `concierge ingest` starts.
    data_source_id: str | None = None
    # Metadata attributes of the knowledge base's documents the filter compares with.
    knowledge_base_category_attribute: str = Field(default="category", min_length=1)
    knowledge_base_language_attribute: str = Field(default="language", min_length=1)
    # Where the knowledge base labels a category differently: "products=catalogue,pricing=prices"
    # (our category=its label). Categories not listed are looked up as they are.
    knowledge_base_category_map: tuple[tuple[str, str], ...] = ()

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


class ModelRuntimeSettings(SettingsGroup):
    """How model calls are made, whichever step makes them."""

    # Attempts on one model before handing over to the next in the route (1 = no retry).
    model_attempts: int = Field(default=2, ge=1, le=5)
    retry_base_delay_ms: int = Field(default=200, ge=0)
    retry_max_delay_ms: int = Field(default=2_000, ge=0)
    # Extra prices or overrides of prices.toml, as JSON: {"<spec>": {"input": 0.003, "output": 0.015}}.
    model_prices: Json[dict[str, Price]] | None = None
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_api_key: str | None = None
    # A Bedrock guardrail for every model route but `offline` (Converse's guardrailConfig for
    # Bedrock models, ApplyGuardrail around the others): its id or ARN, and a version number or
    # DRAFT, in the forms Bedrock accepts, so a typo fails at start rather than on each call.
    bedrock_guardrail_id: str | None = Field(
        default=None,
        pattern=(
            r"^([a-z0-9]+"
            r"|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$"
        ),
    )
    bedrock_guardrail_version: str = Field(default="DRAFT", pattern=r"^(DRAFT|[1-9][0-9]{0,7})$")
    # `optimized` asks Bedrock for latency-optimised inference where the model offers it.
    bedrock_latency: Literal["standard", "optimized"] = "standard"


class SemanticCacheSettings(SettingsGroup):
    """The semantic tier of the answer cache (concierge.adapters.dynamodb.semantic).

    Whether the chain runs it is the api function's `semantic_cache`. Measure false hits with
    `python -m bench.run --only semantic` before turning it on: a question that differs in one
    word ("to Austria" / "to Spain") can score very close."""

    # Embedder spec: `offline` (lexical, no network) or `bedrock:<embedding model id>`.
    embedding_model: str = "offline"
    semantic_threshold: float = Field(default=0.97, gt=0, le=1)


class ScreenSettings(SettingsGroup):
    """The local screen for injected instructions (concierge.safety.screen): the question in the
    api function before any model call, the recent questions of a conversation in condense,
    and retrieved passages in retrieve. `off` only to rule it out while investigating."""

    screen: Literal["on", "off"] = "on"

    @property
    def on(self) -> bool:
        return self.screen == "on"


class AnswerCheckSettings(SettingsGroup):
    """The checks an answer passes before it is shared (concierge.safety.answer_checks)."""

    # Hosts that links and images in an answer may point at ("www.example.com"); a subdomain
    # of a listed host is allowed too. Others are removed: a rendered image or link carries
    # whatever its URL holds to its host.
    link_hosts: CommaList = ()
    # Longer answers are cut at a sentence and not cached.
    max_answer_chars: int = Field(default=4_000, ge=200, le=20_000)


class PrivacySettings(SettingsGroup):
    """What the chain stores: with `redact_pii`, e-mail addresses, phone numbers, payment card
    numbers and IBANs are masked in the history and the cache (concierge.safety.pii), except
    those the knowledge base's own documents publish."""

    redact_pii: bool = False


class ServeSettings(SettingsGroup):
    """`concierge serve` and `concierge ask`: where the local API listens (its command-line
    options win), and whether it demands tokens as API Gateway's JWT authorizer does.

    `off`: no token needed; a request is the local user (an admin), or the user of the bearer
    token it carries, unverified. `local`: tokens signed by the local key (`concierge token`)
    are verified (issuer, audience, expiry, signature against the local JWKS); others get 401."""

    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65_535)
    auth: Literal["off", "local"] = "off"


S = TypeVar("S", bound=SettingsGroup)


def variable(field: str) -> str:
    """The environment variable of a settings field: `cache_ttl_seconds` → CONCIERGE_CACHE_TTL_SECONDS."""
    return ENV_PREFIX + field.upper()


def load(model: type[S], environ: Mapping[str, str]) -> S:
    """Build `model` from the CONCIERGE_* variables of `environ`; unset and empty ones take the
    field's default."""
    values = {
        name: environ[variable(name)]
        for name in model.model_fields
        if environ.get(variable(name), "") != ""
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{variable(str(err['loc'][0]))}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings for {model.__name__}: {problems}") from None
