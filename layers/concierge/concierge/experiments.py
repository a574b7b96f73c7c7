"""A/B variants: per environment (prompts/variants.toml), named alternatives to the prompt
versions its label serves and to its model routes, each with a weight.

A request's variant is chosen by a stable hash of its user's `sub` (of the session when there is
no user), so a user keeps theirs across sessions and cold starts; an environment without
variants serves one, `default`. The variant travels with the request: the chain's steps load its
prompt versions and models, its name is in the response, the logs, a metric dimension, the cache
key, the history (and so the feedback) and the eval report.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from concierge.models.state import Variant
from concierge.prompt_library import CHAIN_PROMPTS, PROMPTS_DIR, labelled, load_prompt

VARIANTS_FILE = PROMPTS_DIR / "variants.toml"
DEFAULT = "default"
_STEPS = ("classify", "condense", "answer")


class ExperimentError(ValueError):
    """prompts/variants.toml names something that does not exist, or weighs nothing."""


class _Arm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(gt=0)
    prompts: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """The variants one environment serves."""

    label: str
    variants: tuple[Variant, ...]
    weights: tuple[float, ...]

    def assign(self, key: str) -> Variant:
        """The variant of the user (or session) `key`: the same key always gets the same one."""
        if len(self.variants) == 1:
            return self.variants[0]
        digest = hashlib.sha256(f"{self.label}\x1f{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(self.weights)
        for variant, weight in zip(self.variants, self.weights, strict=True):
            if point < weight:
                return variant
            point -= weight
        return self.variants[-1]

    def named(self, name: str) -> Variant | None:
        return next((variant for variant in self.variants if variant.name == name), None)


def experiment(label: str, path: Path = VARIANTS_FILE) -> Experiment:
    """The variants of environment `label`: its section of variants.toml, or `default` alone."""
    base = labelled(label)
    arms = _arms(path).get(label, {})
    if not arms:
        return Experiment(label, (Variant(name=DEFAULT, prompts=base),), (1.0,))
    variants, weights = [], []
    for name, arm in arms.items():
        unknown = [key for key in (*arm.prompts, *arm.models) if key not in _STEPS]
        if unknown:
            raise ExperimentError(f"variant {label}.{name}: no step or prompt {unknown}")
        for prompt, version in arm.prompts.items():
            load_prompt(prompt, version)  # an unknown version fails here, at cold start
        prompts = {prompt: arm.prompts.get(prompt, base[prompt]) for prompt in CHAIN_PROMPTS}
        variants.append(Variant(name=name, prompts=prompts, models=dict(arm.models)))
        weights.append(arm.weight)
    return Experiment(label, tuple(variants), tuple(weights))


@cache
def _arms(path: Path) -> dict[str, dict[str, _Arm]]:
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    try:
        return {
            label: {name: _Arm.model_validate(arm) for name, arm in arms.items()}
            for label, arms in document.items()
        }
    except (ValidationError, AttributeError) as error:
        raise ExperimentError(f"{path.name}: {error}") from None
