"""POST /feedback's work: a user's rating of one of their answers, once.

The answer is named by its request id and looked up in the caller's own history: an answer of
another user's, one never stored (a question the screen refused, a failed request), or one
whose turn has expired or been deleted is not found (404). What served it — the A/B variant,
prompt versions, answer model, category and language — is copied from the turn into the
rating, so the feedback report compares variants without the history. A second rating of the
same answer is a 409: the first one stands.
"""

from __future__ import annotations

import time

from concierge.adapters.dynamodb.feedback import Rating
from concierge.api.errors import MISCONFIGURED, STORE_UNAVAILABLE, cause_name, conflict, not_found
from concierge.api.services import ApiServices
from concierge.errors import StoreUnavailableError
from concierge.models.http import FeedbackReceipt, FeedbackRequest
from concierge.models.identity import User
from concierge.observability import logger, record_feedback
from concierge.safety.pii import redact

_NO_SUCH_ANSWER = not_found("No such answer of yours to rate.")
_ALREADY_RATED = conflict("You have rated this answer already.")


def rate_answer(
    request: FeedbackRequest, user: User, services: ApiServices, now: float | None = None
) -> FeedbackReceipt:
    ratings = services.ratings
    if ratings is None:
        raise MISCONFIGURED.error()
    at = int(now if now is not None else time.time())
    comment = request.comment or None
    if comment is not None and services.redact_pii:
        comment = redact(comment).text
    try:
        turn = ratings.answered(user.user_id, request.request_id)
        if turn is None:
            logger.info("rated answer not found")
            raise _NO_SUCH_ANSWER.error()
        recorded = ratings.record(
            Rating(
                user_id=user.user_id,
                turn=turn,
                rating=request.rating,
                comment=comment,
                created_at=at,
                expires_at=at + services.settings.feedback_ttl_seconds,
            )
        )
    except StoreUnavailableError as error:
        # The error's name, not its message: botocore's may quote keys (user ids).
        logger.error("the feedback could not be stored", extra={"error": cause_name(error)})
        raise STORE_UNAVAILABLE.error() from None
    if not recorded:
        logger.info("answer rated already", extra={"variant": turn.variant})
        raise _ALREADY_RATED.error()
    record_feedback(turn.variant, request.rating)
    # Names and flags only: the comment is the user's own words.
    logger.info(
        "answer rated",
        extra={
            "variant": turn.variant,
            "rating": request.rating,
            "commented": comment is not None,
            "category": turn.category,
            "language": turn.language,
        },
    )
    return FeedbackReceipt(request_id=turn.request_id, rating=request.rating, variant=turn.variant)
