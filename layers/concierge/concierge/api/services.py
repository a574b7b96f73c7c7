"""What the HTTP edge needs, built by the composition root (concierge.wiring), and the
spending policy it applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from concierge.adapters.dynamodb.budgets import Spend
from concierge.adapters.dynamodb.feedback import AnsweredTurn, Rating
from concierge.adapters.executor import ChainExecutor
from concierge.cache_keys import cache_scope
from concierge.config import ApiSettings
from concierge.experiments import Experiment
from concierge.models.http import CacheFlush, SessionDeletion, UserDeletion
from concierge.models.state import BudgetReservation, Variant
from concierge.prompt_library import prompt_versions

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


class Ratings(Protocol):
    """Users' ratings of their answers (concierge.adapters.dynamodb.feedback.FeedbackStore)."""

    def answered(self, user_id: str, request_id: str) -> AnsweredTurn | None: ...

    def record(self, rating: Rating) -> bool: ...


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
class Serving:
    """What one request is served with: its A/B variant, the prompt versions and primary
    answer model that come with it, and the cache scope they make."""

    variant: Variant
    prompt_versions: str
    answer_model: str
    cache_scope: str


@dataclass(frozen=True)
class Experiments:
    """The environment's variants and how a request's variant becomes what serves it."""

    experiment: Experiment
    kb_version: str
    # The configured primary answer model (a variant may name another).
    answer_model: str

    def serving(self, variant: Variant) -> Serving:
        answer_model = variant.models.get("answer", self.answer_model)
        versions = prompt_versions(variant.prompts)
        return Serving(
            variant=variant,
            prompt_versions=versions,
            answer_model=answer_model,
            cache_scope=cache_scope(self.kb_version, versions, answer_model, variant.name),
        )

    def for_user(self, key: str) -> Serving:
        return self.serving(self.experiment.assign(key))

    def named(self, name: str) -> Serving | None:
        variant = self.experiment.named(name)
        return self.serving(variant) if variant else None


@dataclass(frozen=True)
class ApiServices:
    settings: ApiSettings
    # The A/B variants; with the kb version, a variant's scope is part of every cache key.
    experiments: Experiments
    executor: ChainExecutor
    # None when the tables are not configured: the routes that need them answer 500.
    user_data: UserData | None
    budget: BudgetPolicy
    spending: Spending | None
    # Screen questions for injected instructions before the chain starts.
    screen: bool = True
    # Keep questions in the history (and comments on answers) with personal data masked.
    redact_pii: bool = False
    # Users' ratings of their answers; None when the tables are not configured (POST /feedback
    # answers 500).
    ratings: Ratings | None = None
