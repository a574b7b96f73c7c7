"""promptfoo's provider for the Concierge eval: one case asked of the chain through its HTTP API
(`concierge serve`, started by `make eval-promptfoo`, or any URL in CONCIERGE_EVAL_URL), scored by
the same checks as `concierge eval` (concierge_cli.evaluation.checks); the assertions of
promptfooconfig.yaml read the scores from the response's metadata."""

from __future__ import annotations

import os
import uuid
from typing import Any

from concierge_cli.evaluation.cases import Case
from concierge_cli.evaluation.checks import score
from concierge_cli.evaluation.targets import Http


def call_api(prompt: str, options: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    variant = (options.get("config") or {}).get("variant", "default")
    test = context.get("test") or {}
    case = Case.model_validate(
        {
            "description": test.get("description", ""),
            "vars": {
                key: value
                for key, value in (context.get("vars") or {}).items()
                if key in ("question", "turns")
            },
            "metadata": test.get("metadata") or {},
        }
    )
    target = Http(
        os.environ.get("CONCIERGE_EVAL_URL", "http://127.0.0.1:3000"),
        os.environ.get("CONCIERGE_EVAL_TOKEN"),
    )
    body: dict[str, Any] = {
        "session_id": f"promptfoo-{uuid.uuid4().hex[:12]}",
        "bypass_cache": True,
        "variant": variant,
    }
    for turn in case.metadata.turns:
        target.chat({**body, "question": turn})
    reply = target.chat({**body, "question": case.vars.question})
    scored = score(case, variant, reply.status, reply.body, reply.seconds)
    if scored.error:
        return {"error": scored.error}
    return {
        "output": scored.answer,
        "cost": scored.cost_usd,
        "metadata": {"scores": scored.scores, "cited": scored.cited, "latency_s": scored.latency_s},
    }
