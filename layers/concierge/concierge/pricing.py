"""The price table: what a model call cost, from its token counts."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Price(BaseModel):
    """USD per 1,000 tokens."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


_DEFAULT_PRICES = Path(__file__).with_name("prices.toml")
_MICRO = 1_000_000
# Geography prefixes of Bedrock cross-region inference profiles.
_PROFILE_PREFIX = re.compile(r"^bedrock:(?:us|us-gov|eu|apac|ca|jp|au|global)\.")


@cache
def default_prices() -> dict[str, Price]:
    with _DEFAULT_PRICES.open("rb") as handle:
        return {spec: Price.model_validate(entry) for spec, entry in tomllib.load(handle).items()}


class PriceTable:
    def __init__(self, overrides: dict[str, Price] | None = None) -> None:
        self._prices = {**default_prices(), **(overrides or {})}

    def price(self, spec: str) -> Price | None:
        found = self._prices.get(spec)
        if found is None:
            found = self._prices.get(_PROFILE_PREFIX.sub("bedrock:", spec))
        return found

    def cost(self, spec: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD, or None when the model has no price (the call is then counted as unpriced)."""
        price = self.price(spec)
        if price is None:
            return None
        return round((input_tokens * price.input + output_tokens * price.output) / 1000, 8)


def micro_usd(usd: float) -> int:
    """USD as whole millionths: budgets count in integers (DynamoDB adds them exactly)."""
    return round(usd * _MICRO)
