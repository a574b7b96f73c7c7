"""Amazon Bedrock through the Converse API (any model or cross-region inference profile id).

With a guardrail, Converse applies it to the prompt and the reply itself; its trace (always
asked for) says what intervened, read by `guardrail.converse_guardrail`."""

from __future__ import annotations

from typing import Any

from concierge.adapters import TimedClient
from concierge.adapters.aws_errors import MODEL, translated
from concierge.adapters.llm.guardrail import converse_guardrail
from concierge.adapters.llm.port import ModelReply, ModelRequest


class BedrockConverseModel:
    def __init__(
        self,
        model_id: str,
        client: TimedClient,
        *,
        guardrail_id: str | None = None,
        guardrail_version: str = "DRAFT",
        latency: str = "standard",
    ) -> None:
        self.model_id = model_id
        self.spec = f"bedrock:{model_id}"
        self._client = client
        # With the trace, the response names the policies that acted: the reply's reasons. (It
        # also quotes what they matched; only the names are read.)
        self._guardrail = (
            {
                "guardrailIdentifier": guardrail_id,
                "guardrailVersion": guardrail_version,
                "trace": "enabled",
            }
            if guardrail_id
            else None
        )
        self._latency = latency

    def _runtime(self, timeout_s: float) -> Any:
        # Whole seconds keep the client cache small; never wait past the budget.
        return self._client(float(max(1, int(timeout_s))))

    def _content(self, request: ModelRequest) -> list[dict[str, Any]]:
        """The user message; with a guardrail, the user's own words as guardContent, the only
        part its input policies assess (Converse assesses the whole message otherwise)."""
        if not self._guardrail:
            return [{"text": request.prompt}]
        before, guarded, after = request.guarded_part()
        blocks: list[dict[str, Any]] = [{"text": before}] if before else []
        blocks.append({"guardContent": {"text": {"text": guarded}}})
        return [*blocks, {"text": after}] if after else blocks

    def generate(self, request: ModelRequest) -> ModelReply:
        inference: dict[str, Any] = {
            "maxTokens": request.max_tokens,
            "temperature": request.temperature,
            "topP": request.top_p,
        }
        if request.stop_sequences:
            inference["stopSequences"] = list(request.stop_sequences)
        arguments: dict[str, Any] = {
            "modelId": self.model_id,
            "system": [{"text": request.system}],
            "messages": [{"role": "user", "content": self._content(request)}],
            "inferenceConfig": inference,
        }
        if self._guardrail:
            arguments["guardrailConfig"] = self._guardrail
        if self._latency == "optimized":
            arguments["performanceConfig"] = {"latency": "optimized"}
        with translated(MODEL, self.spec):
            response = self._runtime(request.timeout_s).converse(**arguments)
        blocks = response["output"]["message"]["content"]
        usage = response.get("usage", {})
        return ModelReply(
            text="".join(block.get("text", "") for block in blocks),
            model=self.spec,
            input_tokens=usage.get("inputTokens", 0),
            output_tokens=usage.get("outputTokens", 0),
            # Read even without a guardrail of ours: one enforced for the account applies too.
            guardrail=converse_guardrail(response),
        )
