"""Test doubles for the model port."""

from __future__ import annotations

from dataclasses import dataclass, field

from concierge.adapters.llm.port import ModelReply, ModelRequest


@dataclass
class ScriptedModel:
    """Replies with the given texts in order and remembers every request."""

    replies: list[str]
    spec: str = "scripted"
    requests: list[ModelRequest] = field(default_factory=list)

    def generate(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return ModelReply(
            text=self.replies.pop(0), model=self.spec, input_tokens=10, output_tokens=5
        )
