"""What the HTTP edge needs, built by the composition root (concierge.wiring), and the
spending policy it applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from concierge.adapters.dynamodb.budgets import Spend
from concierge.adapters.executor import ChainExecutor
from concierge.config import ApiSettings
from concierge.models.http import CacheFlush, SessionDeletion, UserDeletion
from concierge.models.state import BudgetReservation

# A budget item outlives its day by one, so that a request that started before midnight can
# still settle against it.
_BUDGET_KEPT = timedelta(days=2)
# What stands for "no limit" in a dimension the other one limits: DynamoDB numbers go far beyond.
_NO_LIMIT = 10**15


class UserData(Protocol):
    """Erasure and flushing (concierge.adapters.dynamodb.sessions.SessionStore)."""

    def delete_session(self, user_id: str, session_id: str) -> SessionDeletion: ...

    def delete_user(self, user_id: str) -> UserDeletion: ...

    def flush_cache(self, kb_version: str | None = None) -> CacheFlush: ...


class Spending(Protocol):
    """A user's daily spend (concierge.adapters.dynamodb.budgets.BudgetStore)."""

    def settle(
        self, user_id: str, day: str, reserved: Spend, actual: Spend, expires_at: int
    ) -> None: ...

    def spent(self, user_id: str, day: str) -> Spend: ...


@dataclass(frozen=True)
class BudgetPolicy:
    """Per-user daily limits (0 = none) and what one request reserves against them: at least
    the largest cost one request can have, so that concurrent requests overshoot a limit by
    one request's cost at most."""

    daily_tokens: int
    daily_micro_usd: int
    reserve_tokens: int
    reserve_micro_usd: int

    @property
    def limited(self) -> bool:
        return bool(self.daily_tokens or self.daily_micro_usd)

    def reservation(self, now: datetime) -> BudgetReservation | None:
        """What the chain reserves for a request made at `now`, or None without limits."""
        if not self.limited:
            return None
        return BudgetReservation(
            day=day_of(now),
            reserve_tokens=self.reserve_tokens,
            reserve_micro_usd=self.reserve_micro_usd,
            token_limit=self.daily_tokens or _NO_LIMIT,
            micro_usd_limit=self.daily_micro_usd or _NO_LIMIT,
            expires_at=int((now + _BUDGET_KEPT).timestamp()),
        )


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_to_midnight(now: datetime) -> int:
    """Until the UTC day ends (at least 1): when a spent budget is renewed."""
    midnight = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, int((midnight - now).total_seconds()))


@dataclass(frozen=True)
class ApiServices:
    settings: ApiSettings
    # kb version, prompt versions and answer model: part of every cache key.
    cache_scope: str
    executor: ChainExecutor
    # None when the tables are not configured: the routes that need them answer 500.
    user_data: UserData | None
    budget: BudgetPolicy
    spending: Spending | None
    # Screen questions for injected instructions before the chain starts.
    screen: bool = True
    # Keep questions in the history with personal data masked.
    redact_pii: bool = False
