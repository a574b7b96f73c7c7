"""Model specs from configuration to adapters.

offline                                   the deterministic offline model
bedrock:<model or inference profile id>   Amazon Bedrock Converse
sagemaker:<endpoint>:<messages|inputs>    a SageMaker (JumpStart) endpoint and its payload family
openai:<model>                            an OpenAI-compatible server at CONCIERGE_OPENAI_BASE_URL

Each adapter is imported only when a spec names it: a step on the offline model loads no AWS SDK.

With a Bedrock guardrail configured, every model but the offline one is guarded by it: Bedrock
models through Converse's own `guardrailConfig`, SageMaker and OpenAI-compatible models by a
`GuardedModel` that calls ApplyGuardrail before and after them, with a `bedrock-runtime` client
from the same time-bounded factory as the model's.
"""

from __future__ import annotations

from concierge.adapters import ClientFactory
from concierge.adapters.llm.port import ChatModel
from concierge.config import ModelRuntimeSettings
from concierge.errors import ConfigurationError

_SPEC_HELP = (
    "use offline, bedrock:<model id>, sagemaker:<endpoint>:<messages|inputs> or openai:<model>"
)


def model_for(spec: str, runtime: ModelRuntimeSettings, clients: ClientFactory) -> ChatModel:
    """The adapter a spec names. `clients` builds AWS clients; model calls get one whose read
    timeout is the time left in the request's budget."""
    provider, _, rest = spec.partition(":")
    if provider == "offline" and not rest:
        from concierge.adapters.llm.offline import OfflineModel

        return OfflineModel()
    if provider == "bedrock" and rest:
        from concierge.adapters.llm.bedrock import BedrockConverseModel

        return BedrockConverseModel(
            rest,
            lambda timeout: clients("bedrock-runtime", timeout),
            guardrail_id=runtime.bedrock_guardrail_id,
            guardrail_version=runtime.bedrock_guardrail_version,
            latency=runtime.bedrock_latency,
        )
    if provider == "sagemaker":
        endpoint, _, payload = rest.partition(":")
        if endpoint and payload in ("messages", "inputs"):
            from concierge.adapters.llm.sagemaker import SageMakerEndpointModel

            return _guarded(
                SageMakerEndpointModel(
                    endpoint,
                    payload,  # type: ignore[arg-type]
                    lambda timeout: clients("sagemaker-runtime", timeout),
                ),
                runtime,
                clients,
            )
    if provider == "openai" and rest:
        from concierge.adapters.llm.openai_compat import OpenAICompatibleModel

        return _guarded(
            OpenAICompatibleModel(rest, runtime.openai_base_url, runtime.openai_api_key),
            runtime,
            clients,
        )
    raise ConfigurationError(f"unknown model {spec!r}: {_SPEC_HELP}")


def _guarded(model: ChatModel, runtime: ModelRuntimeSettings, clients: ClientFactory) -> ChatModel:
    """`model` behind the configured guardrail (ApplyGuardrail), or as it is without one."""
    if not runtime.bedrock_guardrail_id:
        return model
    from concierge.adapters.llm.guardrail import GuardedModel, GuardrailChecker

    checker = GuardrailChecker(
        runtime.bedrock_guardrail_id,
        runtime.bedrock_guardrail_version,
        lambda timeout: clients("bedrock-runtime", timeout),
    )
    return GuardedModel(model, checker)
