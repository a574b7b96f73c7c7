"""Model routes of a parameter set, and the model access they need.

A route is a step's primary model and its fallbacks. What the three routes call decides what
the allow-lists (BedrockModelIds, BedrockInferenceProfileIds, SageMakerEndpointNames) must
grant, and the ARNs the step roles end up with:

- `bedrock:<geo>.<model id>` (a cross-region inference profile) needs the profile AND its base
  model, because Bedrock authorises the model in whichever region the profile routes to;
- `bedrock:<model id>` needs the model;
- `sagemaker:<endpoint>:<payload>` needs the endpoint (IAM matches its lower-cased name);
- `offline` needs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STEPS = ("Classify", "Condense", "Answer")
# Geographies of Bedrock's cross-region (system-defined) inference profiles.
GEOGRAPHIES = ("us", "us-gov", "eu", "apac", "ca", "jp", "au", "global")
ALLOW_LISTS = ("BedrockModelIds", "BedrockInferenceProfileIds", "SageMakerEndpointNames")
# The allow-list parameter -> the prefix of its slot conditions in template.yaml (…0, …1, …).
SLOT_CONDITIONS = {
    "BedrockModelIds": "HasBedrockModel",
    "BedrockInferenceProfileIds": "HasInferenceProfile",
    "SageMakerEndpointNames": "HasSageMakerEndpoint",
}


@dataclass(frozen=True)
class ModelAccess:
    model_ids: frozenset[str] = frozenset()
    profile_ids: frozenset[str] = frozenset()
    endpoints: frozenset[str] = frozenset()

    def arns(self, region: str, account: str) -> dict[str, set[str]]:
        """The Resource ARNs per IAM action that this access amounts to."""
        bedrock = {f"arn:aws:bedrock:*::foundation-model/{id_}" for id_ in self.model_ids} | {
            f"arn:aws:bedrock:{region}:{account}:inference-profile/{id_}"
            for id_ in self.profile_ids
        }
        sagemaker = {f"arn:aws:sagemaker:{region}:{account}:endpoint/{n}" for n in self.endpoints}
        return {
            action: arns
            for action, arns in (
                ("bedrock:InvokeModel", bedrock),
                ("sagemaker:InvokeEndpoint", sagemaker),
            )
            if arns
        }


def split_list(value: str) -> list[str]:
    """A comma-separated value as the package and CloudFormation read it; "" is no item."""
    return [item.strip() for item in value.split(",") if item.strip()]


def route(parameters: Mapping[str, str], step: str, defaults: Mapping[str, str]) -> list[str]:
    """Primary model then fallbacks of one step (`defaults` fill parameters not given)."""
    value = {**defaults, **parameters}
    return [value[f"{step}Model"], *split_list(value[f"{step}Fallbacks"])]


def all_specs(parameters: Mapping[str, str], defaults: Mapping[str, str]) -> list[str]:
    return [spec for step in STEPS for spec in route(parameters, step, defaults)]


def profile_geography(model_id: str) -> str | None:
    head, dot, _ = model_id.partition(".")
    return head if dot and head in GEOGRAPHIES else None


def required_access(specs: Iterable[str]) -> ModelAccess:
    """What a set of model specs needs the roles to be allowed to invoke."""
    model_ids: set[str] = set()
    profile_ids: set[str] = set()
    endpoints: set[str] = set()
    for spec in specs:
        provider, _, rest = spec.partition(":")
        if provider == "offline":
            continue
        if provider == "bedrock":
            geography = profile_geography(rest)
            if geography:
                profile_ids.add(rest)
                model_ids.add(rest.removeprefix(f"{geography}."))
            else:
                model_ids.add(rest)
        elif provider == "sagemaker":
            endpoints.add(rest.split(":", 1)[0].lower())
        else:
            raise ValueError(f"{spec!r} cannot run in AWS")
    return ModelAccess(frozenset(model_ids), frozenset(profile_ids), frozenset(endpoints))


def allowed_access(
    parameters: Mapping[str, str], defaults: Mapping[str, str], stack_name: str = ""
) -> ModelAccess:
    """What the allow-list parameters grant, and the stack's own endpoint when it hosts a model
    (SelfHostedModelId): `<stack name>-self-hosted`, which the step roles get with it."""
    value = {**defaults, **parameters}
    hosted = {f"{stack_name}-self-hosted"} if value.get("SelfHostedModelId") else set()
    return ModelAccess(
        frozenset(split_list(value["BedrockModelIds"])),
        frozenset(split_list(value["BedrockInferenceProfileIds"])),
        frozenset(split_list(value["SageMakerEndpointNames"])) | hosted,
    )


def template_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}


def slot_count(template: Mapping[str, Any], allow_list: str) -> int:
    """How many items of an allow-list the template turns into ARNs."""
    prefix = SLOT_CONDITIONS[allow_list]
    return len([name for name in template["Conditions"] if re.fullmatch(rf"{prefix}\d+", name)])
