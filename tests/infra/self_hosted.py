"""The self-hosted model's parameters as a deployer would give them (docs/deploy.md, "A
self-hosted model"), for the tests that synthesise the template with and without it."""

from __future__ import annotations

from typing import Any

from infra.cfn_yaml import Evaluator

# A JumpStart model's id, its serving image and weights in eu-west-1 (the values are examples
# of the forms; nothing is deployed), a gated model's licence accepted, and the answer route
# naming the endpoint with a Bedrock fallback.
MODEL_ID = "meta-textgeneration-llama-3-1-8b-instruct"
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.29.0-lmi11.0.0-cu124"
WEIGHTS_BUCKET = "jumpstart-private-cache-prod-eu-west-1"
WEIGHTS = (
    f"s3://{WEIGHTS_BUCKET}/meta-textgeneration/{MODEL_ID}/artifacts/inference-prepack/v2.0.0/"
)
STACK_NAME = "concierge-test"
ENDPOINT = f"{STACK_NAME}-self-hosted"
PARAMETERS = {
    "SelfHostedModelId": MODEL_ID,
    "SelfHostedImageUri": IMAGE,
    "SelfHostedModelDataUri": WEIGHTS,
    "SelfHostedAcceptEula": "true",
    "SelfHostedInstanceType": "ml.g5.2xlarge",
    "SelfHostedMinInstances": "1",
    "SelfHostedBusinessHoursInstances": "2",
    "SelfHostedMaxInstances": "4",
    "SelfHostedInvocationsPerInstance": "25",
    "SelfHostedTimeZone": "Europe/Madrid",
    "AnswerModel": f"sagemaker:{ENDPOINT}:messages",
    "AnswerFallbacks": "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
    "BedrockModelIds": "anthropic.claude-3-haiku-20240307-v1:0",
}


def hosted_resources(template: dict[str, Any]) -> list[str]:
    """The resources only a self-hosted model creates (Condition HostsModel)."""
    return [
        name
        for name, body in template["Resources"].items()
        if body.get("Condition") == "HostsModel"
    ]


def evaluator(template: dict[str, Any], parameters: dict[str, str]) -> Evaluator:
    return Evaluator(template, parameters, stack_name=STACK_NAME, strict=True)
