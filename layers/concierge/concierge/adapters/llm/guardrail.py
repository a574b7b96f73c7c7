"""Amazon Bedrock Guardrails: what an intervention was, and the guardrail around models that
Bedrock does not serve.

Bedrock models get the guardrail inside Converse (`guardrailConfig`, with its trace); SageMaker
endpoints and OpenAI-compatible servers are wrapped in a `GuardedModel`, which asks the same
guardrail through ApplyGuardrail before the model (the prompt) and after it (the reply). Both
paths read the guardrail's assessments with one function, `verdict`, so an intervention looks
the same whichever route answered:

    blocked     some policy BLOCKED: the text is the guardrail's own message
    anonymized  only ANONYMIZED actions: the text is the model's, with personal data masked

and its reasons are short names of what intervened, never text (an assessment quotes what it
matched: that is user or document text, and it stays here):

    content filters          their type: PROMPT_ATTACK, HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT
    denied topics            topic:<name>
    word filters             word (custom words), profanity (the managed list)
    sensitive information    the PII entity type (EMAIL, PHONE, …), regex:<name> (regex without
                             a name)
    contextual grounding     GROUNDING, RELEVANCE

The reasons of a verdict are those of the findings that decided it (a block is explained by what
blocked, not by what was masked alongside), deduplicated, in the order the guardrail reported
them. Detections without an action (`NONE`, detect-only mode) and automated-reasoning findings
(which carry no action) are not interventions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from concierge.adapters import TimedClient
from concierge.adapters.aws_errors import MODEL, translated
from concierge.adapters.llm.port import ChatModel, ModelReply, ModelRequest
from concierge.errors import ModelInvocationError, ModelTimeoutError
from concierge.models.http import Guardrail

Action = Literal["blocked", "anonymized"]
Source = Literal["INPUT", "OUTPUT"]

_BLOCKED = "BLOCKED"
_ANONYMIZED = "ANONYMIZED"
_ACTIONS: dict[str, Action] = {_BLOCKED: "blocked", _ANONYMIZED: "anonymized"}
# ApplyGuardrail's `action` when any policy acted; Converse's `stopReason` when it did.
APPLY_INTERVENED = "GUARDRAIL_INTERVENED"
CONVERSE_INTERVENED = "guardrail_intervened"
# Shown only if a guardrail blocks without a message of its own (every guardrail has one).
FALLBACK_BLOCKED_MESSAGE = "Sorry, I can't help with that."


@dataclass(frozen=True)
class Verdict:
    """What a guardrail did to one text, and why."""

    action: Action
    reasons: tuple[str, ...] = ()

    def to_guardrail(self, source: Literal["input", "output"]) -> Guardrail:
        return Guardrail(action=self.action, source=source, reasons=list(self.reasons))


def findings(assessment: Mapping[str, Any]) -> Iterator[tuple[Action, str]]:
    """Each intervention of one assessment: its action and its reason, in report order."""
    for topic in assessment.get("topicPolicy", {}).get("topics", []):
        yield from _acted(topic, f"topic:{topic.get('name', '')}")
    for content_filter in assessment.get("contentPolicy", {}).get("filters", []):
        yield from _acted(content_filter, str(content_filter.get("type", "")))
    words = assessment.get("wordPolicy", {})
    for word in words.get("customWords", []):
        yield from _acted(word, "word")
    for managed in words.get("managedWordLists", []):
        yield from _acted(managed, str(managed.get("type", "")).lower() or "word")
    sensitive = assessment.get("sensitiveInformationPolicy", {})
    for entity in sensitive.get("piiEntities", []):
        yield from _acted(entity, str(entity.get("type", "")))
    for regex in sensitive.get("regexes", []):
        name = regex.get("name")
        yield from _acted(regex, f"regex:{name}" if name else "regex")
    for grounding in assessment.get("contextualGroundingPolicy", {}).get("filters", []):
        yield from _acted(grounding, str(grounding.get("type", "")))


def _acted(entry: Mapping[str, Any], reason: str) -> Iterator[tuple[Action, str]]:
    action = _ACTIONS.get(str(entry.get("action", "")).upper())
    if action is not None:
        yield action, reason


def verdict(assessments: Iterable[Mapping[str, Any]]) -> Verdict | None:
    """The strongest action of the assessments (blocked over anonymized) and the reasons that
    took it; None when no policy acted."""
    found = [finding for assessment in assessments for finding in findings(assessment)]
    for action in ("blocked", "anonymized"):
        reasons = [reason for taken, reason in found if taken == action]
        if reasons:
            return Verdict(action, tuple(dict.fromkeys(reason for reason in reasons if reason)))
    return None


def converse_guardrail(response: Mapping[str, Any]) -> Guardrail | None:
    """The intervention a Converse response reports, from its guardrail trace.

    Which text the reply holds decides: a blocked input (the model never ran) or a blocked
    output is the guardrail's message; otherwise masked output, or an answer to a prompt whose
    personal data was masked. Bedrock reports masking with either stopReason (`end_turn` or
    `guardrail_intervened`), so the trace, not the stop reason, says what happened.

    A `guardrail_intervened` stop the trace does not explain (no trace, or no acting policy in
    it) is read as a block of the output, without reasons: the text may be the guardrail's
    message, so it must not be cached or passed on as an answer, and nothing says the question
    was at fault."""
    trace = response.get("trace", {}).get("guardrail", {})
    asked = verdict(trace.get("inputAssessment", {}).values())
    answered = verdict(
        assessment
        for assessments in trace.get("outputAssessments", {}).values()
        for assessment in assessments
    )
    if asked is not None and asked.action == "blocked":
        return asked.to_guardrail("input")
    if answered is not None:
        return answered.to_guardrail("output")
    if asked is not None:
        return asked.to_guardrail("input")
    if response.get("stopReason") == CONVERSE_INTERVENED:
        return Guardrail(action="blocked", source="output")
    return None


@dataclass(frozen=True)
class Check:
    """One ApplyGuardrail answer: the verdict (None: nothing acted) and the guardrail's text
    (its message when blocked, the masked text when anonymized; None when nothing acted)."""

    verdict: Verdict | None
    text: str | None = None


class GuardrailChecker:
    """ApplyGuardrail on one text, with one guardrail version."""

    def __init__(self, guardrail_id: str, guardrail_version: str, client: TimedClient) -> None:
        self.guardrail_id = guardrail_id
        self.guardrail_version = guardrail_version
        self.name = f"guardrail:{guardrail_id}:{guardrail_version}"
        self._client = client

    def check(self, source: Source, text: str, timeout_s: float) -> Check:
        # Whole seconds keep the client cache small; never wait past the budget.
        runtime = self._client(float(max(1, int(timeout_s))))
        with translated(MODEL, self.name):
            response = runtime.apply_guardrail(
                guardrailIdentifier=self.guardrail_id,
                guardrailVersion=self.guardrail_version,
                source=source,
                content=[{"text": {"text": text}}],
            )
        if response.get("action") != APPLY_INTERVENED:
            return Check(None)
        # An intervention no acting policy explains is read as a block, as for Converse.
        found = verdict(response.get("assessments", [])) or Verdict("blocked")
        # One content block was sent: its text comes back as one output (outputScope
        # INTERVENTIONS, the default, returns it when the guardrail acted).
        outputs = [output.get("text", "") for output in response.get("outputs", [])]
        guarded = "".join(outputs) if outputs else None
        if found.action == "blocked":
            return Check(found, guarded or FALLBACK_BLOCKED_MESSAGE)
        if guarded is None:
            # Passing the unmasked text on would undo what the guardrail is there for.
            raise ModelInvocationError(f"{self.name} masked the text but returned none")
        return Check(found, guarded)


class GuardedModel:
    """A model Bedrock does not serve, behind a Bedrock guardrail (ApplyGuardrail).

    The guarded input is the request's prompt: it holds everything user-controlled — the
    question, the history, the retrieved passages. The system prompt is not sent: it is our
    own fixed instructions (the prompt library's), so checking it would spend guardrail text
    units on every call for nothing, and a prompt-attack filter would judge our instructions
    rather than the user's words.

    Input: a block answers with the guardrail's message and the model is never called; masking
    sends the masked prompt to the model, because a guardrail configured to anonymise input
    says that personal data must not reach the model, and a SageMaker endpoint or an
    OpenAI-compatible server is where it would otherwise go. Output: a block replaces the
    reply by the guardrail's message (the model's tokens were spent and are still reported);
    masking replaces it by the masked text.

    The guardrail's calls share the request's time budget with the model's: each call gets
    what is left of `request.timeout_s`."""

    def __init__(
        self,
        inner: ChatModel,
        guardrail: GuardrailChecker,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.guardrail = guardrail
        self._clock = clock

    def generate(self, request: ModelRequest) -> ModelReply:
        started = self._clock()

        def left() -> float:
            remaining = request.timeout_s - (self._clock() - started)
            if remaining <= 0:
                raise ModelTimeoutError(f"{self.spec}: no time left after the guardrail")
            return remaining

        before, guarded, after = request.guarded_part()
        asked = self.guardrail.check("INPUT", guarded, left())
        if asked.verdict is not None and asked.verdict.action == "blocked":
            return ModelReply(
                text=asked.text or FALLBACK_BLOCKED_MESSAGE,
                model=self.spec,
                input_tokens=0,
                output_tokens=0,
                guardrail=asked.verdict.to_guardrail("input"),
            )
        masked = asked.text if asked.verdict is not None and asked.text else guarded
        prompt = before + masked + after
        reply = self.inner.generate(
            request.model_copy(update={"prompt": prompt, "timeout_s": left()})
        )
        answered = (
            self.guardrail.check("OUTPUT", reply.text, left())
            if reply.text.strip()
            else Check(None)
        )
        if answered.verdict is not None:
            return reply.model_copy(
                update={
                    "text": answered.text or FALLBACK_BLOCKED_MESSAGE,
                    "guardrail": answered.verdict.to_guardrail("output"),
                }
            )
        if asked.verdict is not None:
            return reply.model_copy(update={"guardrail": asked.verdict.to_guardrail("input")})
        return reply
