"""The model port: one request/reply shape for every provider.

A request carries the rendered prompt (what a real model reads) and the structured `inputs`
it was rendered from (what the offline model works on), so each step builds one request and
any adapter can serve it.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from concierge.models.http import Guardrail

# "judge": the eval's judge (concierge_cli.evaluation), never a chain step.
Task = Literal["classify", "condense", "answer", "judge"]


class ModelRequest(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    task: Task
    system: str
    prompt: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    # The part of `prompt` a user wrote (the question, as it appears in the prompt): what a
    # guardrail assesses on input. The rest (our instructions, retrieved documents, the
    # history) is not the user's message, and a prompt-attack filter must not judge it.
    # Empty: the whole prompt.
    guarded: str = ""
    max_tokens: int
    temperature: float
    top_p: float
    stop_sequences: tuple[str, ...] = ()
    # Seconds left before the request deadline: adapters set their timeouts from it.
    timeout_s: float

    def guarded_part(self) -> tuple[str, str, str]:
        """`prompt` as (before, guarded, after); the whole prompt is guarded when `guarded` is
        empty or not in it."""
        if self.guarded and self.guarded in self.prompt:
            return self.prompt.partition(self.guarded)
        return "", self.prompt, ""


class ModelReply(BaseModel):
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    # True when token counts are estimated (the provider did not report them).
    estimated: bool = False
    # A safety layer (a Bedrock guardrail) intervened: with action `blocked` the text is its
    # own message, not the model's; with `anonymized` the model's text with personal data masked.
    guardrail: Guardrail | None = None

    @property
    def refused(self) -> bool:
        return self.guardrail is not None and self.guardrail.action == "blocked"


class ChatModel(Protocol):
    spec: str

    def generate(self, request: ModelRequest) -> ModelReply: ...


def estimate_tokens(text: str) -> int:
    """About four characters a token for Latin scripts; only used where providers are silent."""
    return max(1, len(text) // 4)
