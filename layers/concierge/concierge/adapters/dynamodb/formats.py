"""The item formats of the tables: attribute names, their DynamoDB types, and who writes them.

The state machine writes answers and turns with direct DynamoDB tasks (no Lambda in between);
this package writes the rest and reads everything back. Both sides name attributes from here:
Python through `ItemFormat`, the ASL through the test that compares it with these formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

AttributeType = Literal["S", "N", "B", "M"]
# "chain": a direct task of statemachine/chat.asl.json writes it; "adapter": this package does.
Writer = Literal["chain", "adapter"]


@dataclass(frozen=True)
class Attribute:
    name: str
    type: AttributeType
    written_by: Writer
    meaning: str


@dataclass(frozen=True)
class ItemFormat:
    """One kind of item: the table it lives in (template.yaml logical id) and its attributes."""

    table: str
    attributes: tuple[Attribute, ...]

    def __getitem__(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(f"{self.table} items have no attribute {name!r}")

    @property
    def names(self) -> frozenset[str]:
        return frozenset(attribute.name for attribute in self.attributes)

    def projection(self, *names: str) -> str:
        """A ProjectionExpression of these attributes (each must be part of the format)."""
        return ", ".join(self[name].name for name in names)

    def aliased_projection(self, *names: str) -> tuple[str, dict[str, str]]:
        """A ProjectionExpression of these attributes through placeholders, and its
        ExpressionAttributeNames: for attributes whose names DynamoDB reserves (`language`,
        `comment`)."""
        aliases = {f"#{self[name].name}": self[name].name for name in names}
        return ", ".join(aliases), aliases

    def value(self, name: str, data: Any) -> dict[str, Any]:
        """`data` as the typed attribute value of `name` ({"S": "…"}, {"N": "3"}, …)."""
        kind = self[name].type
        return {kind: str(data) if kind == "N" else data}

    def read(self, item: dict[str, Any], name: str) -> Any:
        """The value of `name` in a raw item (numbers as int), or None when it is absent."""
        typed = item.get(name)
        if not typed:
            return None
        kind = self[name].type
        raw = typed.get(kind)
        return int(raw) if kind == "N" and raw is not None else raw

    def item(self, **values: Any) -> dict[str, dict[str, Any]]:
        """A raw item from Python values; None values are left out."""
        return {name: self.value(name, data) for name, data in values.items() if data is not None}


CACHE_ENTRY = ItemFormat(
    "CacheTable",
    (
        Attribute("cache_key", "S", "chain", "q#<sha256 of question, language, scope>"),
        Attribute("answer", "S", "chain", "the answer text"),
        Attribute("citations", "S", "chain", "the citations, a JSON list"),
        Attribute("category", "S", "chain", "the question's category"),
        Attribute("language", "S", "chain", "the answer's language"),
        Attribute("request_id", "S", "chain", "the request that produced it"),
        Attribute("user_id", "S", "chain", "the user (`sub`) whose question produced it"),
        Attribute("session_id", "S", "chain", "that user's session (erasure)"),
        Attribute("kb_version", "S", "chain", "the knowledge it was answered from (flush)"),
        Attribute("created_at", "N", "chain", "epoch seconds"),
        Attribute("expires_at", "N", "chain", "epoch seconds; the table's TTL attribute"),
        Attribute("hits", "N", "chain", "times served from the cache"),
        Attribute("last_hit_at", "N", "chain", "epoch seconds of the latest hit"),
        Attribute("semantic_bucket", "S", "adapter", "the bucket holding its question's vector"),
    ),
)

# The semantic tier's vectors live in the cache table too, one item per bucket (key `sem#…`).
SEMANTIC_BUCKET = ItemFormat(
    "CacheTable",
    (
        Attribute("cache_key", "S", "adapter", "sem#<sha256 of scope, language, embedder>"),
        Attribute("entries", "M", "adapter", "cache key -> question vector, one byte a dimension"),
        Attribute("kb_version", "S", "adapter", "the knowledge of its entries (flush)"),
        Attribute("expires_at", "N", "adapter", "epoch seconds; renewed by every new entry"),
    ),
)

# History is keyed by the user (partition) and the session (the sort key's prefix): a session
# id names a session only within its user's space, and a user's turns are one partition.
HISTORY_TURN = ItemFormat(
    "HistoryTable",
    (
        Attribute("user_id", "S", "chain", "partition key: the user's `sub`"),
        Attribute(
            "turn_key", "S", "chain", "sort key: <session id>#<13-digit epoch ms>#<request id>"
        ),
        Attribute("session_id", "S", "chain", "the session, as in the sort key's prefix"),
        Attribute("request_id", "S", "chain", "the request of the turn"),
        Attribute("question", "S", "chain", "the question as asked"),
        Attribute("answer", "S", "chain", "the answer given"),
        Attribute("category", "S", "chain", "the question's category"),
        Attribute("language", "S", "chain", "the answer's language"),
        Attribute("expires_at", "N", "chain", "epoch seconds; the table's TTL attribute"),
        Attribute("cache_key", "S", "chain", "the cache entry this turn stored, or empty"),
        Attribute("variant", "S", "chain", "the A/B variant that served the turn"),
        Attribute("prompt_versions", "S", "chain", "the chain's prompt versions, comma-separated"),
        Attribute("answer_model", "S", "chain", "the model spec that wrote the answer"),
    ),
)

# A user's spending of one UTC day. The chain reserves a request's largest cost before its first
# model call (committed_*: settled spend plus reservations in flight, compared with the limits
# atomically); the api function settles it with the request's actual usage.
BUDGET_DAY = ItemFormat(
    "BudgetTable",
    (
        Attribute("user_id", "S", "chain", "partition key: the user's `sub`"),
        Attribute("utc_day", "S", "chain", "sort key: the UTC day, YYYY-MM-DD"),
        Attribute("committed_tokens", "N", "chain", "tokens spent and reserved"),
        Attribute("committed_micro_usd", "N", "chain", "USD millionths spent and reserved"),
        Attribute("expires_at", "N", "chain", "epoch seconds; the table's TTL attribute"),
        Attribute("tokens", "N", "adapter", "tokens spent (settled)"),
        Attribute("micro_usd", "N", "adapter", "USD millionths spent (settled)"),
    ),
)

# A user's rating of one of their answers (POST /feedback), keyed by the user (partition) and
# the answer's request id (sort key): one rating per answer, by a conditional put. What the
# history said of the answer is copied in, so a rating outlives its turn (history expires
# sooner) and the report reads one table. Erased with the user, and with the session.
FEEDBACK = ItemFormat(
    "FeedbackTable",
    (
        Attribute("user_id", "S", "adapter", "partition key: the user's `sub`"),
        Attribute("request_id", "S", "adapter", "sort key: the request that was answered"),
        Attribute("session_id", "S", "adapter", "the answer's session (erasure of the session)"),
        Attribute("rating", "S", "adapter", "`up` or `down`"),
        Attribute("comment", "S", "adapter", "the user's words, if any (PII-masked on demand)"),
        Attribute("variant", "S", "adapter", "the A/B variant that served the answer"),
        Attribute("prompt_versions", "S", "adapter", "its prompt versions, comma-separated"),
        Attribute("answer_model", "S", "adapter", "the model spec that wrote the answer"),
        Attribute("category", "S", "adapter", "the question's category"),
        Attribute("language", "S", "adapter", "the answer's language"),
        Attribute("created_at", "N", "adapter", "epoch seconds of the rating"),
        Attribute("expires_at", "N", "adapter", "epoch seconds; the table's TTL attribute"),
    ),
)

# The cache table's index of entries by producer: a user's (or a session's) entries, for
# erasure, whatever their history says.
CACHE_BY_PRODUCER = "ByProducer"

# What the state machine's `${…TableName}` substitutions hold: the formats its tasks use.
CHAIN_TABLES = {
    "CacheTableName": CACHE_ENTRY,
    "HistoryTableName": HISTORY_TURN,
    "BudgetTableName": BUDGET_DAY,
}
