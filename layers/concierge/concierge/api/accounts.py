"""What users and admins do with stored data: forget a session, erase a user, flush the cache,
and read one's own spending."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from concierge.api.errors import MISCONFIGURED, STORE_UNAVAILABLE, cause_name, not_found
from concierge.api.services import ApiServices, UserData, day_of
from concierge.errors import StoreUnavailableError
from concierge.models.http import (
    CacheFlush,
    FlushRequest,
    Limits,
    SessionDeletion,
    UsageReport,
    UserDeletion,
)
from concierge.models.identity import User
from concierge.observability import logger

_NO_SUCH_SESSION = not_found("No such session.")
T = TypeVar("T")


def forget_session(user: User, session_id: str, services: ApiServices) -> SessionDeletion:
    """DELETE /sessions/{id}: the caller's session, its turns and the cache entries it produced.
    Another user's session of that name is not the caller's: 404, as for none at all."""
    deletion = _with_store(services, lambda data: data.delete_session(user.user_id, session_id))
    if deletion.turns == 0 and deletion.cache_entries == 0:
        raise _NO_SUCH_SESSION.error()
    logger.info(
        "session deleted", extra={"turns": deletion.turns, "cache_entries": deletion.cache_entries}
    )
    return deletion


def erase_user(user_id: str, services: ApiServices) -> UserDeletion:
    """DELETE /users/{sub} (admins): everything stored for that user."""
    erased = _with_store(services, lambda data: data.delete_user(user_id))
    logger.info(
        "user erased",
        extra={
            "turns": erased.turns,
            "cache_entries": erased.cache_entries,
            "budget_days": erased.budget_days,
            "feedback": erased.feedback,
        },
    )
    return erased


def flush_cache(request: FlushRequest, services: ApiServices) -> CacheFlush:
    """POST /admin/cache/flush (admins): every cached answer, or one knowledge version's."""
    flushed = _with_store(services, lambda data: data.flush_cache(kb_version=request.kb_version))
    logger.info("cache flushed", extra={"entries": flushed.entries})
    return flushed


def usage_of(user: User, services: ApiServices, now: datetime | None = None) -> UsageReport:
    """GET /me/usage: today's (UTC) settled spending and the limits."""
    day = day_of(now or datetime.now(UTC))
    budget = services.budget
    limits = Limits(
        tokens=budget.daily_tokens or None,
        cost_usd=(budget.daily_micro_usd / 1_000_000) or None,
    )
    if services.spending is None:
        return UsageReport(user_id=user.user_id, day=day, tokens=0, cost_usd=0.0, limits=limits)
    try:
        spent = services.spending.spent(user.user_id, day)
    except StoreUnavailableError as error:
        # The error's name, not its traceback: botocore's message may quote keys (user ids).
        logger.error("usage could not be read", extra={"error": cause_name(error)})
        raise STORE_UNAVAILABLE.error() from None
    return UsageReport(
        user_id=user.user_id,
        day=day,
        tokens=spent.tokens,
        cost_usd=spent.micro_usd / 1_000_000,
        limits=limits,
    )


def _with_store(services: ApiServices, work: Callable[[UserData], T]) -> T:
    if services.user_data is None:
        raise MISCONFIGURED.error()
    try:
        return work(services.user_data)
    except StoreUnavailableError as error:
        logger.error("the tables failed", extra={"error": cause_name(error)})
        raise STORE_UNAVAILABLE.error() from None
