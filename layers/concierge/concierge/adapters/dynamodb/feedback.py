"""Users' ratings of their answers (format `FEEDBACK`): found in the history, stored once, read
back for the report.

`POST /feedback` names an answer by its request id. What the chain knew of it — its session,
A/B variant, prompt versions, answer model, category and language — is in the turn
AppendHistory wrote (format `HISTORY_TURN`), in the user's own partition of the history table:
one strongly consistent Query of that partition with a filter on `request_id` finds it. A
partition is small (a user's turns, deleted by TTL after CONCIERGE_HISTORY_TTL_SECONDS), so
reading it whole costs a few reads, and a request id of another user's is not in it at all.

The rating is written with `attribute_not_exists(request_id)`: an answer is rated once.
Erasure (with the session or the user) is `sessions.SessionStore`'s, as for every table.
Any DynamoDB failure is a `StoreUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from concierge.adapters.aws_errors import STORE, translated
from concierge.adapters.dynamodb.formats import FEEDBACK, HISTORY_TURN

RatingValue = Literal["up", "down"]
# What a turn written before variants existed served: the environment's one variant.
_NO_VARIANT = "default"
_TURN_FIELDS = (
    "request_id",
    "session_id",
    "variant",
    "prompt_versions",
    "answer_model",
    "category",
    "language",
)


@dataclass(frozen=True)
class AnsweredTurn:
    """What the history says of one answer: where and how it was served."""

    request_id: str
    session_id: str
    variant: str
    prompt_versions: str
    answer_model: str
    category: str
    language: str


@dataclass(frozen=True)
class Rating:
    """One user's rating of one answer, with what served it."""

    user_id: str
    turn: AnsweredTurn
    rating: RatingValue
    comment: str | None
    created_at: int
    expires_at: int

    @property
    def up(self) -> bool:
        return self.rating == "up"


class FeedbackStore:
    def __init__(self, client: Any, feedback_table: str, history_table: str | None = None) -> None:
        self._client = client
        self._table = feedback_table
        self._history = history_table

    def answered(self, user_id: str, request_id: str) -> AnsweredTurn | None:
        """The user's turn of `request_id`, or None: no such answer of theirs (never stored —
        a refused question, a failed request —, expired, deleted, or someone else's)."""
        if self._history is None:
            raise ValueError("FeedbackStore.answered needs the history table")
        projection, names = HISTORY_TURN.aliased_projection(*_TURN_FIELDS)
        request: dict[str, Any] = {
            "TableName": self._history,
            "KeyConditionExpression": "user_id = :user",
            "FilterExpression": "#request_id = :request",
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                ":user": HISTORY_TURN.value("user_id", user_id),
                ":request": HISTORY_TURN.value("request_id", request_id),
            },
            # The answer was written just before it was returned: read it back for sure.
            "ConsistentRead": True,
        }
        with translated(STORE, "the history table"):
            while True:
                page = self._client.query(**request)
                if page["Items"]:
                    return _turn(page["Items"][0])
                if "LastEvaluatedKey" not in page:
                    return None
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record(self, rating: Rating) -> bool:
        """Store a rating; False when the user has rated that answer already (nothing is
        changed then: the first rating stands)."""
        turn = rating.turn
        item = FEEDBACK.item(
            user_id=rating.user_id,
            request_id=turn.request_id,
            session_id=turn.session_id,
            rating=rating.rating,
            comment=rating.comment or None,
            variant=turn.variant,
            prompt_versions=turn.prompt_versions or None,
            answer_model=turn.answer_model or None,
            category=turn.category or None,
            language=turn.language or None,
            created_at=rating.created_at,
            expires_at=rating.expires_at,
        )
        with translated(STORE, "the feedback table"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(request_id)",
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def ratings(self, since: int | None = None) -> Iterator[Rating]:
        """Every stored rating (those made at or after epoch second `since`), for the report:
        a Scan of the table, page after page. Comments are not read (the report counts, it
        never quotes a user)."""
        projection, names = FEEDBACK.aliased_projection(
            *(attribute for attribute in sorted(FEEDBACK.names) if attribute != "comment")
        )
        request: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": names,
        }
        if since is not None:
            request["FilterExpression"] = "#created_at >= :since"
            request["ExpressionAttributeValues"] = {":since": FEEDBACK.value("created_at", since)}
        with translated(STORE, "the feedback table"):
            while True:
                page = self._client.scan(**request)
                for item in page["Items"]:
                    yield _rating(item)
                if "LastEvaluatedKey" not in page:
                    return
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _turn(item: dict[str, Any]) -> AnsweredTurn:
    def read(name: str) -> str:
        return str(HISTORY_TURN.read(item, name) or "")

    return AnsweredTurn(
        request_id=read("request_id"),
        session_id=read("session_id"),
        variant=read("variant") or _NO_VARIANT,
        prompt_versions=read("prompt_versions"),
        answer_model=read("answer_model"),
        category=read("category"),
        language=read("language"),
    )


def _rating(item: dict[str, Any]) -> Rating:
    def read(name: str) -> str:
        return str(FEEDBACK.read(item, name) or "")

    rating = read("rating")
    return Rating(
        user_id=read("user_id"),
        turn=AnsweredTurn(
            request_id=read("request_id"),
            session_id=read("session_id"),
            variant=read("variant") or _NO_VARIANT,
            prompt_versions=read("prompt_versions"),
            answer_model=read("answer_model"),
            category=read("category"),
            language=read("language"),
        ),
        rating="up" if rating == "up" else "down",
        comment=FEEDBACK.read(item, "comment"),
        created_at=FEEDBACK.read(item, "created_at") or 0,
        expires_at=FEEDBACK.read(item, "expires_at") or 0,
    )
