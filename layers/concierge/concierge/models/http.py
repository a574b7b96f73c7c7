"""The public HTTP contract: POST /chat, POST /feedback, DELETE /sessions/{id}, the users' and
admins' routes, GET /health and the error body. Tests outside the project rely on it exactly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
# A token's `sub`: a Cognito UUID, or another issuer's id ("auth0|…", an e-mail address).
USER_ID_PATTERN = r"^[A-Za-z0-9._@:|+=-]{1,128}$"
MAX_QUESTION_CHARS = 4000
# A request id as the api function issues them (concierge.api.requests.request_id): API
# Gateway's id without the characters an execution name refuses, or a fresh uuid4 hex.
MAX_REQUEST_ID_CHARS = 64
REQUEST_ID_PATTERN = rf"^[A-Za-z0-9_-]{{1,{MAX_REQUEST_ID_CHARS}}}$"
MAX_COMMENT_CHARS = 1000


class _Contract(BaseModel):
    # defer_build: the step functions import Citation with the state models, and build the
    # validators of none of the rest.
    model_config = ConfigDict(defer_build=True)


class ChatRequest(_Contract):
    model_config = ConfigDict(extra="ignore")

    # StrictStr: a number or a list is a bad request, not something to coerce.
    question: StrictStr = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    session_id: StrictStr | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    # Answer as if there were no cache: nothing is read from it or written to it. The header
    # `Cache-Control: no-cache` does the same.
    bypass_cache: StrictBool = False
    # Serve this A/B variant instead of the caller's (administrators only; evaluations compare
    # variants through the API this way).
    variant: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class Citation(_Contract):
    source: str
    title: str
    snippet: str


# A response model's defaults are for building it; every field is in each response, so the
# OpenAPI document lists them all as required.
_ALWAYS_SENT = ConfigDict(
    json_schema_mode_override="serialization",
    json_schema_serialization_defaults_required=True,
)


class Usage(_Contract):
    model_config = _ALWAYS_SENT

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class Guardrail(_Contract):
    """A safety layer intervened: what it did, to what, and why.

    action   `blocked`: the question or the answer was replaced by a refusal;
             `filtered`: passages carrying injected instructions were left out of the answer;
             `anonymized`: personal data in the answer was masked.
    source   `input` (the question), `passages` (retrieved documents) or `output` (the answer).
    reasons  short machine-readable names (`prompt_injection`, `PROMPT_ATTACK`, `EMAIL`, …),
             never the text that triggered them.
    """

    model_config = _ALWAYS_SENT

    action: Literal["blocked", "filtered", "anonymized"]
    source: Literal["input", "passages", "output"]
    reasons: list[str] = Field(default_factory=list)


class ChatResponse(_Contract):
    answer: str
    citations: list[Citation]
    category: str
    language: str
    cached: bool
    session_id: str
    request_id: str
    usage: Usage
    # The A/B variant that served the request (`default` where the environment runs none).
    variant: str = "default"
    # Only when a safety layer intervened: absent from the body otherwise.
    guardrail: Guardrail | None = Field(default=None, exclude_if=lambda value: value is None)


class SessionDeletion(_Contract):
    """DELETE /sessions/{session_id}: what was deleted (zeros when there was nothing)."""

    session_id: str
    turns: int
    cache_entries: int


class UserDeletion(_Contract):
    """DELETE /users/{sub}: what was erased for the user."""

    user_id: str
    turns: int
    cache_entries: int
    budget_days: int
    # Their ratings of answers (POST /feedback).
    feedback: int


class FeedbackRequest(_Contract):
    """POST /feedback: the caller's rating of one of their answers, named by its request id."""

    model_config = ConfigDict(extra="ignore")

    request_id: StrictStr = Field(pattern=REQUEST_ID_PATTERN)
    rating: Literal["up", "down"]
    # Free text, kept as the user wrote it (masked with CONCIERGE_REDACT_PII); an empty one is
    # no comment.
    comment: StrictStr | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


class FeedbackReceipt(_Contract):
    """POST /feedback: the rating stored, and the A/B variant that served the rated answer."""

    request_id: str
    rating: Literal["up", "down"]
    variant: str


class FlushRequest(_Contract):
    """POST /admin/cache/flush: every entry, or those of one knowledge-base version."""

    model_config = ConfigDict(extra="forbid")

    all: StrictBool | None = None
    kb_version: StrictStr | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_of_them(self) -> FlushRequest:
        if (self.all is True) == (self.kb_version is not None):
            raise ValueError('give {"all": true} or {"kb_version": "…"}, one of them')
        return self


class Limits(_Contract):
    """A user's daily limits; null: none."""

    model_config = _ALWAYS_SENT

    tokens: int | None = None
    cost_usd: float | None = None


class UsageReport(_Contract):
    """GET /me/usage: what the caller spent today (UTC) and their limits."""

    model_config = _ALWAYS_SENT

    user_id: str
    day: str
    tokens: int
    cost_usd: float
    limits: Limits


class CacheFlush(_Contract):
    """POST /admin/cache/flush and `concierge cache flush`: how many entries went."""

    entries: int
    kb_version: str | None = None


class Health(_Contract):
    model_config = _ALWAYS_SENT

    status: str = "ok"


class ErrorDetail(_Contract):
    code: str
    message: str
    request_id: str


class ErrorResponse(_Contract):
    error: ErrorDetail
