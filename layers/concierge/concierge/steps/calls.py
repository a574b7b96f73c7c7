"""One model call with its bookkeeping: the remaining budget, latency, tokens and cost."""

from __future__ import annotations

import time
from typing import Any

from concierge.adapters.llm.port import ChatModel, ModelReply, ModelRequest, Task
from concierge.errors import BudgetExceededError
from concierge.models.state import StepUsage
from concierge.prompt_library import Prompt

# Below this there is no point starting a model call: it could not finish in time.
_MIN_CALL_SECONDS = 0.5


def seconds_left(deadline_ms: int) -> float:
    return deadline_ms / 1000 - time.time()


def call_model(
    model: ChatModel,
    task: Task,
    prompt: Prompt,
    *,
    inputs: dict[str, Any],
    deadline_ms: int,
    system_values: dict[str, str] | None = None,
    prompt_values: dict[str, str] | None = None,
) -> tuple[ModelReply, StepUsage]:
    remaining = seconds_left(deadline_ms)
    if remaining < _MIN_CALL_SECONDS:
        raise BudgetExceededError(f"{task}: {remaining:.2f}s left of the request budget")
    request = ModelRequest(
        task=task,
        system=prompt.render_system(**(system_values or {})),
        prompt=prompt.render(**(prompt_values or {})),
        inputs=inputs,
        max_tokens=prompt.max_tokens,
        temperature=prompt.temperature,
        top_p=prompt.top_p,
        timeout_s=remaining,
    )
    started = time.perf_counter()
    reply = model.generate(request)
    usage = StepUsage(
        step=task,
        model=reply.model,
        llm_calls=1,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        latency_ms=round((time.perf_counter() - started) * 1000),
        estimated=reply.estimated,
    )
    return reply, usage
