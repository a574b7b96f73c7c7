"""Wiring for the Lambda handlers: settings and adapters per step, built once per container."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from concierge.errors import InvalidStepInputError

M = TypeVar("M", bound=BaseModel)


def parse_event(model: type[M], event: Any) -> M:
    """Validate a step's input; the error name tells Step Functions (and people) what broke."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidStepInputError(f"{model.__name__}: invalid fields: {fields}") from None


@cache
def retriever_for(index_uri: str) -> Any:
    from concierge.adapters.retrieval.local_index import load_index

    return load_index(index_uri)


def chain_executor(settings: Any) -> Any:
    """The executor the settings ask for, over the factory's Step Functions client."""
    from concierge.adapters.aws import aws_client
    from concierge.adapters.executor import PollingExecutor, SyncExecutor

    client = aws_client("stepfunctions")
    if settings.execution_mode == "poll":
        return PollingExecutor(client, settings.state_machine_arn)
    return SyncExecutor(client, settings.state_machine_arn)
