"""The eval's judge: a model (Bedrock, or any OpenAI-compatible server) grading correctness and
faithfulness, with prompts versioned in the prompt library (judge_correctness,
judge_faithfulness)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from concierge.adapters.llm.port import ChatModel, ModelRequest
from concierge.prompt_library import Prompt, fenced, load_prompt
from concierge_cli.evaluation.cases import Case

_JSON = re.compile(r"\{.*\}", re.DOTALL)
JUDGE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Verdict:
    score: float
    reason: str


class Judge:
    """Grades answers with `model`; `versions` name the judge prompts' versions (newest by
    default)."""

    def __init__(self, model: ChatModel, versions: dict[str, str] | None = None) -> None:
        self.model = model
        chosen = versions or {}
        self.correctness_prompt = load_prompt("judge_correctness", chosen.get("judge_correctness"))
        self.faithfulness_prompt = load_prompt(
            "judge_faithfulness", chosen.get("judge_faithfulness")
        )

    @property
    def versions(self) -> str:
        return f"{self.correctness_prompt.version},{self.faithfulness_prompt.version}"

    def correctness(self, case: Case, answer: str) -> Verdict:
        user = self.correctness_prompt.render(
            kind=case.metadata.kind,
            question=fenced(case.vars.question),
            facts=fenced("\n".join(case.metadata.facts) or "(none given)"),
            answer=fenced(answer),
        )
        return self._ask(self.correctness_prompt, user)

    def faithfulness(self, answer: str, passages: list[str]) -> Verdict:
        documents = "\n".join(
            f'<document index="{n}">\n{fenced(text)}\n</document>'
            for n, text in enumerate(passages, start=1)
        )
        user = self.faithfulness_prompt.render(
            passages=documents or "(none)", answer=fenced(answer)
        )
        return self._ask(self.faithfulness_prompt, user)

    def _ask(self, prompt: Prompt, user: str) -> Verdict:
        reply = self.model.generate(
            ModelRequest(
                task="judge",
                system=prompt.render_system(),
                prompt=user,
                max_tokens=prompt.max_tokens,
                temperature=prompt.temperature,
                top_p=prompt.top_p,
                timeout_s=JUDGE_TIMEOUT_S,
            )
        )
        return parse_verdict(reply.text)


def parse_verdict(text: str) -> Verdict:
    """The judge's JSON; an unreadable reply scores 0 and says so (never a crash of the run)."""
    match = _JSON.search(text)
    try:
        document: Any = json.loads(match.group(0)) if match else None
        score = float(document["score"])
    except (ValueError, TypeError, KeyError):
        return Verdict(0.0, "the judge's reply was not the JSON asked for")
    return Verdict(min(1.0, max(0.0, score)), str(document.get("reason", ""))[:300])
