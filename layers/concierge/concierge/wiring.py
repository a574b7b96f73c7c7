"""The composition root: the one module that reads settings and builds what the handlers use —
AWS clients, model routes, the retriever, the embedder, the stores and the chain executor.

Handlers (functions/*/app.py), the local runtime and the CLI ask this module; everything below
it receives what it needs as arguments and never reads the environment. Each builder runs once
per container (Lambda reuses them between invocations); `reset()` forgets them all, for a
process that changes its environment (the local runtime, tests).

Imports happen inside the builders: a function imports only the adapters it uses.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from concierge import config
from concierge.errors import ConfigurationError

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from concierge.adapters.dynamodb.feedback import FeedbackStore
    from concierge.adapters.dynamodb.semantic import SemanticIndex
    from concierge.adapters.dynamodb.sessions import SessionStore
    from concierge.adapters.embeddings.port import Embedder
    from concierge.adapters.embeddings.static import StaticEmbedder
    from concierge.adapters.executor import ChainExecutor
    from concierge.adapters.llm.port import ChatModel
    from concierge.adapters.retrieval.port import Retriever
    from concierge.api import ApiServices, BudgetPolicy
    from concierge.knowledge import Catalog
    from concierge.steps.calls import ModelRoute
    from concierge.steps.cascade import LocalClassifier

S = TypeVar("S", bound=config.SettingsGroup)
F = TypeVar("F", bound=Callable[..., Any])
Step = Literal["classify", "condense", "answer"]

_builders: list[Any] = []


def _once(builder: F) -> F:
    """Cache a builder for the container's life, and let `reset` forget it."""
    cached = cache(builder)
    _builders.append(cached)
    return cast(F, cached)


@_once
def settings(group: type[S]) -> S:
    """One settings group, read from the environment once."""
    return config.load(group, os.environ)


@_once
def aws_client(service: str, read_timeout: float | None = None, region: str | None = None) -> Any:
    """The one factory of AWS clients (botocore's standard configuration, cached); `region`
    only where the resource is known to live elsewhere than the configured region."""
    from concierge.adapters.aws import aws_client as build

    return build(service, read_timeout, region) if region else build(service, read_timeout)


def model_specs(step: Step, primary: str | None = None) -> tuple[str, ...]:
    """The model specs of a step's route: its primary (a variant's, when it names one), then
    its fallbacks."""
    groups: dict[Step, type[config.SettingsGroup]] = {
        "classify": config.ClassifyRoute,
        "condense": config.CondenseRoute,
        "answer": config.AnswerRoute,
    }
    chosen = settings(groups[step]).model_dump()
    return (primary or chosen[f"{step}_model"], *chosen[f"{step}_fallbacks"])


@_once
def route(step: Step, primary: str | None = None) -> ModelRoute:
    """A step's models (primary, then fallbacks) and how they are called; `primary` is an A/B
    variant's model for the step, in place of the configured one."""
    from concierge.adapters.llm.registry import model_for
    from concierge.pricing import PriceTable
    from concierge.steps.calls import ModelRoute, RetryPolicy

    specs = model_specs(step, primary)
    runtime = settings(config.ModelRuntimeSettings)
    return ModelRoute(
        step=step,
        models=[model_for(spec, runtime, aws_client) for spec in specs],
        prices=PriceTable(runtime.model_prices),
        policy=RetryPolicy(
            attempts_per_model=runtime.model_attempts,
            base_delay_s=runtime.retry_base_delay_ms / 1000,
            max_delay_s=runtime.retry_max_delay_ms / 1000,
        ),
        rng=random.Random(),  # noqa: S311 - jitter, not security
    )


def judge_model(spec: str) -> ChatModel:
    """The eval's judge (a model spec, like a route's), built like the steps' models."""
    from concierge.adapters.llm.registry import model_for

    return model_for(spec, settings(config.ModelRuntimeSettings), aws_client)


@_once
def retriever() -> Retriever:
    """The backend the settings choose, built (and a local index loaded) once per container.
    Each backend imports only its own adapter."""
    chosen = settings(config.RetrieveSettings)
    if chosen.retriever == "bedrock-kb":
        from concierge.adapters.retrieval.bedrock_kb import READ_TIMEOUT_S, BedrockKnowledgeBase

        knowledge_base = settings(config.KnowledgeBaseSettings)
        if knowledge_base.knowledge_base_id is None:
            raise ConfigurationError(
                "CONCIERGE_KNOWLEDGE_BASE_ID is required when CONCIERGE_RETRIEVER is bedrock-kb"
            )
        return BedrockKnowledgeBase(
            knowledge_base.knowledge_base_id,
            aws_client("bedrock-agent-runtime", READ_TIMEOUT_S),
            category_attribute=knowledge_base.knowledge_base_category_attribute,
            language_attribute=knowledge_base.knowledge_base_language_attribute,
            category_map=dict(knowledge_base.knowledge_base_category_map),
        )
    from concierge.adapters.retrieval.local_index import load_index

    assert chosen.index_uri is not None  # RetrieveSettings requires it
    s3 = aws_client("s3") if chosen.index_uri.startswith("s3://") else None
    index = load_index(chosen.index_uri, s3, dense=dense_embedder, mode=chosen.search_mode)
    if index.dense_lost:
        # Once per container, on stderr (the log in Lambda): a CLI's stdout stays its output.
        import logging

        logging.getLogger(__name__).warning("local search is lexical only: %s", index.dense_status)
    return index


@_once
def catalog(step: Literal["classify", "condense"] = "condense") -> Catalog | None:
    """The knowledge base's categories and languages, which classify and condense route by:
    the catalog object CONCIERGE_CATALOG_URI names (beside a Bedrock knowledge base), else the
    local index's. Classify with a local classifier takes it from the index that classifier
    searches (loaded once); otherwise the index file is read without building a searchable
    index (condense routes questions but does not search them)."""
    from concierge.adapters.catalog import load_catalog, load_index_catalog
    from concierge.adapters.retrieval.local_index import LocalIndex

    uri = settings(config.CategorySettings).catalog_uri
    if uri is not None:
        return load_catalog(uri, aws_client("s3") if uri.startswith("s3://") else None)
    retrieval = settings(config.RetrieveSettings)
    if retrieval.retriever != "local":
        return None
    if step == "classify" and local_classifier() is not None:
        index = retriever()
        if isinstance(index, LocalIndex):
            return index.catalog
    assert retrieval.index_uri is not None  # RetrieveSettings requires it
    s3 = aws_client("s3") if retrieval.index_uri.startswith("s3://") else None
    return load_index_catalog(retrieval.index_uri, s3)


@_once
def local_classifier() -> LocalClassifier | None:
    """The classify step's first stage (concierge.steps.cascade), over the local index; None
    when it is off, or with a Bedrock knowledge base: there a vote would cost a second Retrieve
    call per question, about what the cheap classify model costs in time, and the threshold is
    calibrated on the local index's ranking, not on a knowledge base's."""
    from concierge.steps.cascade import LocalClassifier

    cascade = settings(config.CascadeSettings)
    if not cascade.on or settings(config.RetrieveSettings).retriever != "local":
        return None
    return LocalClassifier(retriever(), cascade.local_confidence)


@_once
def embedder() -> Embedder:
    """The semantic tier's embedder."""
    from concierge.adapters.embeddings.registry import embedder_for

    return embedder_for(settings(config.SemanticCacheSettings).embedding_model, aws_client)


@_once
def dense_embedder() -> StaticEmbedder:
    """The local index's dense model, from the installed `dense` extra (loaded once). Raises
    `DenseUnavailableError` without the extra: the caller searches or ingests lexically."""
    from concierge.adapters.embeddings.static import load_static_embedder

    return load_static_embedder()


@_once
def semantic_index() -> SemanticIndex:
    from concierge.adapters.dynamodb.semantic import SemanticIndex

    return SemanticIndex(aws_client("dynamodb"), _table("cache_table"))


def session_store(
    history_table: str | None = None,
    cache_table: str | None = None,
    budget_table: str | None = None,
    feedback_table: str | None = None,
) -> SessionStore:
    """Erasure and flushing over the tables: the configured ones, or those named."""
    from concierge.adapters.dynamodb.sessions import SessionStore

    tables = settings(config.TableSettings)
    return SessionStore(
        aws_client("dynamodb"),
        history_table or _table("history_table"),
        cache_table or _table("cache_table"),
        budget_table or tables.budget_table,
        feedback_table=feedback_table or tables.feedback_table,
    )


def feedback_store(
    feedback_table: str | None = None,
    history_table: str | None = None,
    region: str | None = None,
) -> FeedbackStore:
    """Users' ratings (and the history their answers are found in): the configured tables, or
    those named; `region`, where the tables are not in the configured region (a report of
    another environment's stack)."""
    from concierge.adapters.dynamodb.feedback import FeedbackStore

    tables = settings(config.TableSettings)
    table = feedback_table or tables.feedback_table
    if table is None:
        raise ConfigurationError(f"{config.variable('feedback_table')} is not set")
    return FeedbackStore(
        aws_client("dynamodb", region=region) if region else aws_client("dynamodb"),
        table,
        history_table or tables.history_table,
    )


@_once
def executor() -> ChainExecutor:
    """The chain executor the api settings ask for, over the factory's Step Functions client."""
    from concierge.adapters.executor import PollingExecutor, SyncExecutor

    api = settings(config.ApiSettings)
    # One attempt: a retried StartSyncExecution can run the chain, and pay for it, twice. The
    # read timeout outlasts the execution, which the state machine bounds to the budget.
    client = aws_client("stepfunctions", api.request_budget_ms / 1000 + 2)
    if api.execution_mode == "poll":
        return PollingExecutor(client, api.state_machine_arn)
    return SyncExecutor(client, api.state_machine_arn)


@_once
def api_services() -> ApiServices:
    """What the HTTP edge needs to answer: settings, the cache scope, the executor, the stores
    and the spending policy."""
    from concierge.adapters.dynamodb.budgets import BudgetStore
    from concierge.api import ApiServices
    from concierge.api.services import Experiments
    from concierge.experiments import ExperimentError, experiment
    from concierge.prompt_library import UnknownPromptError

    api = settings(config.ApiSettings)
    tables = settings(config.TableSettings)
    budget = budget_policy()
    try:
        variants = (
            experiment(api.prompt_label, Path(api.variants_file))
            if api.variants_file
            else experiment(api.prompt_label)
        )
    except (ExperimentError, UnknownPromptError) as error:
        raise ConfigurationError(f"CONCIERGE_PROMPT_LABEL={api.prompt_label}: {error}") from None
    return ApiServices(
        settings=api,
        experiments=Experiments(
            variants, api.kb_version, settings(config.AnswerRoute).answer_model
        ),
        executor=executor(),
        user_data=session_store() if tables.history_table and tables.cache_table else None,
        budget=budget,
        spending=(
            BudgetStore(aws_client("dynamodb"), tables.budget_table)
            if budget.limited and tables.budget_table
            else None
        ),
        screen=settings(config.ScreenSettings).on,
        redact_pii=settings(config.PrivacySettings).redact_pii,
        ratings=feedback_store() if tables.feedback_table and tables.history_table else None,
    )


def budget_policy() -> BudgetPolicy:
    """The daily limits and a request's reservation: its tokens, priced at the dearest rate of
    the answer route (the steps before it use cheaper models)."""
    from concierge.api import BudgetPolicy
    from concierge.pricing import PriceTable, micro_usd

    api = settings(config.ApiSettings)
    prices = PriceTable(settings(config.ModelRuntimeSettings).model_prices)
    dearest = max(
        (
            max(price.input, price.output)
            for spec in model_specs("answer")
            if (price := prices.price(spec)) is not None
        ),
        default=0.0,
    )
    return BudgetPolicy(
        daily_tokens=api.daily_token_limit,
        daily_micro_usd=micro_usd(api.daily_usd_limit),
        reserve_tokens=api.request_token_reserve,
        reserve_micro_usd=micro_usd(api.request_token_reserve / 1000 * dearest),
    )


@_once
def http_api() -> APIGatewayHttpResolver:
    """The HTTP edge; its services are built on the first request that needs them."""
    from concierge.api import create_app

    return create_app(api_services)


def _table(name: Literal["history_table", "cache_table"]) -> str:
    table: str | None = getattr(settings(config.TableSettings), name)
    if table is None:
        raise ConfigurationError(f"{config.variable(name)} is not set")
    return table


def reset() -> None:
    """Forget every settings group, client and adapter built so far."""
    for builder in _builders:
        builder.cache_clear()
    if (aws := _loaded("concierge.adapters.aws")) is not None:
        aws.reset_clients()


def _loaded(module: str) -> Any:
    import sys

    return sys.modules.get(module)
