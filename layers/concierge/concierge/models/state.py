"""The state of one execution of statemachine/chat.asl.json, step by step.

Every Lambda step parses its event into one of the `*Input` models and returns one of the
`*Output` models; the ASL only moves these documents around. Field names are the JSON paths
the definition uses, so renaming one means changing the ASL too (tests/integration checks both).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from concierge.errors import InvalidStepInputError
from concierge.models.http import Citation, Guardrail


class _State(BaseModel):
    # defer_build: a handler builds the validators of the few documents it uses, not of all.
    model_config = ConfigDict(extra="ignore", defer_build=True)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], event: Any) -> M:
    """A step's input, validated; the error name tells Step Functions (and people) what broke,
    and the message names the fields, never their values (they may be user text)."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidStepInputError(f"{model.__name__}: invalid fields: {fields}") from None


class StepUsage(_State):
    """What one step spent on models, and how it went. `model` is the adapter spec that answered
    (e.g. `offline`, `bedrock:…`); with a fallback it is not the primary."""

    step: str
    model: str
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    # True when token counts are estimated rather than reported by the provider.
    estimated: bool = False
    # False when a model had no price in the table: its cost is counted as 0.
    priced: bool = True
    # Failed attempts that were retried, and hand-overs to the next model of the route.
    retries: int = 0
    fallbacks: int = 0
    # Invalid structured output that was re-asked (repairs) or replaced by a default (defaulted).
    repairs: int = 0
    defaulted: bool = False
    # Every model of the route failed (throttled, unavailable, timed out, unreadable), and the
    # step went on with its safe defaults (classify and condense; the answer step fails).
    failed: bool = False

    def plus(self, other: StepUsage) -> StepUsage:
        """Two calls of one step as one usage (e.g. classify and its repair re-ask)."""
        return self.model_copy(
            update={
                "model": other.model,
                "llm_calls": self.llm_calls + other.llm_calls,
                "input_tokens": self.input_tokens + other.input_tokens,
                "output_tokens": self.output_tokens + other.output_tokens,
                "cost_usd": round(self.cost_usd + other.cost_usd, 8),
                "latency_ms": self.latency_ms + other.latency_ms,
                "estimated": self.estimated or other.estimated,
                "priced": self.priced and other.priced,
                "retries": self.retries + other.retries,
                "fallbacks": self.fallbacks + other.fallbacks,
            }
        )


class CacheLookup(_State):
    """$.lookup: the key to look up, the step it comes after, and what was spent before it.
    `question` and `language` are what the key was built from (the semantic tier embeds the
    question); `semantic` is true once the key is one the semantic tier found."""

    cache_key: str
    question: str
    language: str
    after: Literal["start", "condense"] = "start"
    usage: list[StepUsage] = Field(default_factory=list)
    semantic: bool = False


class Variant(_State):
    """The A/B variant a request is served by (concierge.experiments): the version of each chain
    prompt, and the steps whose primary model it replaces."""

    name: str = "default"
    prompts: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)


class BudgetReservation(_State):
    """$.budget: what the chain reserves in the user's budget before its first model call, and
    the limits it must stay under (0 = that dimension has no limit: a very large number)."""

    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    reserve_tokens: int = Field(ge=0)
    reserve_micro_usd: int = Field(ge=0)
    token_limit: int = Field(ge=0)
    micro_usd_limit: int = Field(ge=0)
    expires_at: int


class ChainInput(_State):
    """The execution input, built by the api function."""

    request_id: str
    # The signed-in user (`sub`): history, cache provenance and budget are theirs.
    user_id: str
    # A session within that user's space.
    session_id: str
    question: str
    # The question as the history keeps it: `question` with personal data masked when the
    # deployment redacts it (concierge.safety.pii), else `question` itself.
    stored_question: str
    # The first lookup: the question as asked (normalised, in `cache_language`, scoped). On a
    # follow-up the definition replaces it with the standalone question's after condense.
    lookup: CacheLookup
    # The language detected from the question's words, before any model call: the first-turn
    # lookup key's language. An answer in another language is not stored under that key.
    cache_language: str
    # kb version, prompt versions, answer model and variant (concierge.cache_keys.cache_scope):
    # follow-up keys are built in the condense step from the standalone question and this scope.
    cache_scope: str
    # The A/B variant serving the request, its prompt versions (one string) and its primary
    # answer model: the history keeps them with the turn, for feedback.
    variant: Variant = Field(default_factory=Variant)
    prompt_versions: str = ""
    answer_model: str = ""
    kb_version: str
    # True: answer as if there were no cache (nothing read from it, nothing written to it).
    cache_bypass: bool = False
    # True: after an exact miss, look for a close enough earlier question (semantic tier).
    semantic: bool = False
    # History sort key of this turn: <session>#<epoch ms>#<request id>. Sorts by time within the
    # session and is unique per request, so a retried write is a no-op rather than a duplicate.
    turn_key: str
    # How many of the session's latest turns to load.
    history_turns: int = Field(ge=1, le=50)
    # 10-digit epoch seconds as a string: the ASL compares it with cache expiry (string order).
    now_epoch_seconds: str
    deadline_ms: int = Field(description="Epoch milliseconds after which steps must give up")
    cache_expires_at: int
    history_expires_at: int
    # Filled by the definition's catch blocks (history_read, cache_read, …): degraded, not failed.
    degraded: dict[str, Any] = Field(default_factory=dict)
    # None: no spending limit for this user, nothing to reserve.
    budget: BudgetReservation | None = None


class ClassifyInput(_State):
    request_id: str
    question: str
    deadline_ms: int
    variant: Variant = Field(default_factory=Variant)


class Classification(_State):
    category: str
    language: str = Field(pattern=r"^[a-z]{2}$")
    usage: StepUsage
    # The question in the knowledge base's main language, when the question is in a language
    # the knowledge base has few or no documents in: retrieval searches with both.
    search_query: str | None = None


class HistoryTurn(_State):
    question: str
    answer: str


class CondenseInput(_State):
    request_id: str
    question: str
    deadline_ms: int
    # Raw DynamoDB items of the session, newest first, as the Query task returns them.
    history_items: list[dict[str, Any]]
    cache_scope: str
    variant: Variant = Field(default_factory=Variant)


class Understanding(_State):
    """What the chain knows before retrieval ($.understanding): the standalone question, its
    classification, and the cache key an answer to it is stored under. On a first turn the ASL
    assembles it from the classify step and the execution input; on a follow-up the condense
    step returns it whole."""

    question: str
    category: str
    language: str = Field(pattern=r"^[a-z]{2}$")
    usage: StepUsage
    cache_key: str
    # The language `cache_key` was built with; an answer in another language is not stored.
    cache_language: str
    # The question in the knowledge base's main language, when the question is in a language
    # the knowledge base has few or no documents in: retrieval searches with both.
    search_query: str | None = None


class RetrieveInput(_State):
    request_id: str
    question: str
    category: str
    language: str
    deadline_ms: int
    # The question in the knowledge base's main language, when the question is in a language
    # the knowledge base has few or no documents in: retrieval searches with both.
    search_query: str | None = None


class Passage(_State):
    source: str
    title: str
    text: str
    category: str
    language: str
    score: float


# Which filter found the passages: the classification's, a relaxed one, or none.
FilterName = Literal["category+language", "language", "none"]


class Retrieval(_State):
    passages: list[Passage]
    filter_used: FilterName
    # How many of the passages come from outside the filter: the search with no filter ranked
    # another passage first, so the classification was in doubt and the last places went to
    # passages the filter hid.
    widened: int = 0
    # Passages the screen left out (injected instructions): `filtered` from `passages`.
    guardrail: Guardrail | None = None


class AnswerInput(_State):
    request_id: str
    question: str
    language: str
    passages: list[Passage]
    deadline_ms: int
    # What the retrieve step's screen left out, reported with the answer.
    screened: Guardrail | None = None
    # The question in the knowledge base's main language, when retrieval searched with it: the
    # passages' words are that language's, not the question's.
    search_query: str | None = None
    variant: Variant = Field(default_factory=Variant)


class AnswerOutput(_State):
    answer: str
    citations: list[Citation]
    # False for answers that must not be served from the cache: nothing relevant found, a
    # safety layer intervened, a check repaired the answer, or a fallback model wrote it.
    cacheable: bool
    usage: StepUsage
    # A safety layer that intervened (a guardrail, the screen, the language check).
    guardrail: Guardrail | None = None
    # The checks that repaired or replaced the answer (`links`, `length`, `uncited`, …).
    problems: list[str] = Field(default_factory=list)
    # The answer as the history and the cache keep it: with personal data masked when the
    # deployment redacts it, else the answer itself.
    stored_answer: str = ""

    @model_validator(mode="after")
    def _stored_as_given(self) -> AnswerOutput:
        if not self.stored_answer:
            self.stored_answer = self.answer
        return self


class QuestionScope(_State):
    """Questions that may share an answer in the semantic tier: the same cache scope
    (knowledge-base version, prompt versions, answer model), language and embedding model."""

    cache_scope: str
    language: str
    embedding_model: str


class SemanticLookupInput(_State):
    action: Literal["lookup"]
    request_id: str
    question: str
    language: str
    cache_scope: str
    deadline_ms: int


class SemanticLookupOutput(_State):
    # The exact cache key of the closest earlier question at or above the threshold, or None.
    match_key: str | None
    similarity: float
    # The question's vector, kept in the state so the answer can be remembered without
    # embedding the question twice.
    vector: list[float]
    embedding_model: str


class SemanticRememberInput(_State):
    action: Literal["remember"]
    request_id: str
    cache_key: str
    language: str
    cache_scope: str
    vector: list[float]
    # The embedder that made `vector` (its bucket holds only that model's vectors).
    embedding_model: str
    kb_version: str
    expires_at: int


class ChainOutput(_State):
    """What a successful execution returns to the api function."""

    status: Literal["answered", "cached"]
    answer: str
    citations: list[Citation]
    category: str
    language: str
    usage: list[StepUsage] = Field(default_factory=list)
    # Best-effort parts that failed ({"cache_read": {"Error": …, "Cause": …}, …}).
    degraded: dict[str, Any] = Field(default_factory=dict)
    # A cached answer the semantic tier found (an earlier question close enough to this one).
    semantic: bool = False
    # Budget was reserved before a model call: the api function settles it.
    reserved: bool = False
    # A safety layer that intervened; never on a cached answer.
    guardrail: Guardrail | None = None

    @field_validator("usage", mode="before")
    @classmethod
    def _skip_steps_not_run(cls, value: Any) -> Any:
        # The ASL lists every step's usage; a skipped step (condense on a first turn) is null.
        return [item for item in value if item is not None] if isinstance(value, list) else value


class ChainFailure(_State):
    """What the definition's catch-all returns: the error name of the step that failed."""

    status: Literal["failed"]
    error: str
    cause: str | None = None
    reserved: bool = False
