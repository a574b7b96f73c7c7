"""Typed errors. Step Functions sees the class name as the error name, so `Catch` and `Retry`
in statemachine/chat.asl.json match on these names: keep them stable."""


class ConciergeError(Exception):
    """Base class of every error Concierge raises on purpose."""


class ConfigurationError(ConciergeError):
    """A required setting is missing or invalid."""


class InvalidStepInputError(ConciergeError):
    """A step received state that does not match its input model."""


class ModelThrottledError(ConciergeError):
    """The model provider throttled us or is temporarily unavailable; worth a retry."""


class ModelTimeoutError(ConciergeError):
    """The model did not answer within the remaining request budget."""


class ModelInvocationError(ConciergeError):
    """The model call failed in a way a retry will not fix (validation, access, not found)."""


class ModelReplyError(ModelInvocationError):
    """The model answered, in a shape the adapter cannot read (not JSON, fields missing): a
    retry of that model would likely read the same, another model of the route may answer.
    The route reports it as a ModelInvocationError when no model is left."""


class RetrievalError(ConciergeError):
    """The knowledge base could not be searched."""


class KnowledgeBaseThrottledError(RetrievalError):
    """The knowledge base throttled us or is temporarily unavailable; worth a retry."""


class KnowledgeBaseTimeoutError(RetrievalError):
    """The knowledge base did not answer within its read timeout; not retried (a second wait
    would outlast the step's budget)."""


class IndexNotFoundError(RetrievalError):
    """The local index file is missing: run `concierge index` (make run does it for you)."""


class StoreUnavailableError(ConciergeError):
    """A table could not be read or written now (throttled, unreachable, refused, or a batch
    left items unprocessed). Operations that raise it are safe to run again."""


class SpendLimitExceededError(ConciergeError):
    """The user's daily token or USD limit is spent (the state machine's name for it: no model
    was called). Not the request's time budget, which is BudgetExceededError."""


class GuardrailInterventionError(ConciergeError):
    """A safety layer stopped the question before an answer could be written (a guardrail
    blocked a classify or condense call, or the conversation carries injected instructions).
    Its message is the intervention as JSON ({"action", "source", "reasons"}: names, never
    text), which the api function turns into a refusal with `guardrail` in the response."""


class BudgetExceededError(ConciergeError):
    """The request deadline passed before the step could do its work."""
