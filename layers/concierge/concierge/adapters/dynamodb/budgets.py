"""Per-user daily spending (format `BUDGET_DAY`): settled after each request, read for
`GET /me/usage`.

The chain reserves a request's largest cost before its first model call (`ReserveBudget`, an
atomic conditional update of `committed_*`); the api function settles the reservation here with
what the request really used, so `committed_*` is again spend plus the reservations still in
flight, and `tokens`/`micro_usd` what was spent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from concierge.adapters.aws_errors import STORE, translated
from concierge.adapters.dynamodb.formats import BUDGET_DAY


@dataclass(frozen=True)
class Spend:
    tokens: int = 0
    micro_usd: int = 0


class BudgetStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def settle(
        self, user_id: str, day: str, reserved: Spend, actual: Spend, expires_at: int
    ) -> None:
        """Replace the request's reservation by its actual use (a failed request's by nothing)."""
        values = {
            ":committed_tokens": BUDGET_DAY.value(
                "committed_tokens", actual.tokens - reserved.tokens
            ),
            ":committed_micro_usd": BUDGET_DAY.value(
                "committed_micro_usd", actual.micro_usd - reserved.micro_usd
            ),
            ":tokens": BUDGET_DAY.value("tokens", actual.tokens),
            ":micro_usd": BUDGET_DAY.value("micro_usd", actual.micro_usd),
            ":expires": BUDGET_DAY.value("expires_at", expires_at),
        }
        with translated(STORE, "the budget table"):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(user_id, day),
                UpdateExpression=(
                    "ADD committed_tokens :committed_tokens, committed_micro_usd "
                    ":committed_micro_usd, tokens :tokens, micro_usd :micro_usd "
                    "SET expires_at = :expires"
                ),
                ExpressionAttributeValues=values,
            )

    def spent(self, user_id: str, day: str) -> Spend:
        """What the user spent that day (settled requests only)."""
        with translated(STORE, "the budget table"):
            item = self._client.get_item(
                TableName=self._table,
                Key=self._key(user_id, day),
                ProjectionExpression=BUDGET_DAY.projection("tokens", "micro_usd"),
                ConsistentRead=True,
            ).get("Item", {})
        return Spend(
            tokens=BUDGET_DAY.read(item, "tokens") or 0,
            micro_usd=BUDGET_DAY.read(item, "micro_usd") or 0,
        )

    @staticmethod
    def _key(user_id: str, day: str) -> dict[str, Any]:
        return {
            "user_id": BUDGET_DAY.value("user_id", user_id),
            "utc_day": BUDGET_DAY.value("utc_day", day),
        }
