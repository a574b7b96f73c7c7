"""Test doubles for the model port."""

from __future__ import annotations

from dataclasses import dataclass, field

from concierge.adapters.llm.port import ModelReply, ModelRequest
from concierge.steps.calls import ModelRoute


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


def route_of(*models: ScriptedModel, step: str = "test") -> ModelRoute:
    """A route over scripted models that never really sleeps between retries."""
    return ModelRoute(step=step, models=list(models), sleep=lambda seconds: None)


@dataclass
class FlakyModel:
    """Raises the given errors in order, then replies "ok"; remembers each request's budget."""

    errors: list[Exception]
    spec: str = "flaky"
    timeouts: list[float] = field(default_factory=list)

    def generate(self, request: ModelRequest) -> ModelReply:
        self.timeouts.append(request.timeout_s)
        if self.errors:
            raise self.errors.pop(0)
        return ModelReply(text="ok", model=self.spec, input_tokens=1000, output_tokens=500)
