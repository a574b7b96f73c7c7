"""The one factory of AWS clients.

boto3 already honours botocore's standard configuration — AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_<SERVICE>, AWS_REGION, AWS_RETRY_MODE, AWS_MAX_ATTEMPTS, shared config
files — so the factory adds only what Concierge needs on top, and caches clients per container.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_USER_AGENT = "concierge/0.1"


@cache
def aws_client(service: str, read_timeout: float | None = None, region: str | None = None) -> Any:
    """A cached client. `read_timeout` suits model calls that must fit the request budget:
    those clients make one attempt per call, because the model route retries and falls back
    itself, within the budget, and SDK retries on top would outlast it. `region` overrides the
    configured one (the CLI reading another environment's stack, which samconfig.toml places)."""
    options: dict[str, Any] = {"user_agent_extra": _USER_AGENT}
    if region is not None:
        options["region_name"] = region
    if read_timeout is not None:
        options.update(
            read_timeout=read_timeout,
            connect_timeout=min(read_timeout, 3.0),
            retries={"total_max_attempts": 1},
        )
    with _creating:
        return _session().client(service, config=Config(**options))  # type: ignore[call-overload]


@cache
def _session() -> boto3.session.Session:
    """One session for every client: each new session would load botocore's endpoint and
    service data again (tens of milliseconds per client at a cold start)."""
    return boto3.session.Session()


# Creating clients from one session is not thread-safe; the clients themselves are.
_creating = threading.Lock()


def reset_clients() -> None:
    """Forget cached clients and their session (after changing credentials or endpoints in the
    same process)."""
    aws_client.cache_clear()
    _session.cache_clear()
