"""The session history the chain loads: LoadHistory's raw items to turns."""

from __future__ import annotations

from typing import Any

from concierge.adapters.dynamodb.formats import HISTORY_TURN
from concierge.models.state import HistoryTurn


def turns_from_items(items: list[dict[str, Any]]) -> list[HistoryTurn]:
    """The Query task's items (newest first, `question` and `answer` projected) as turns,
    oldest first. An item missing either is skipped rather than failing the follow-up."""
    turns = [
        HistoryTurn(question=question, answer=answer)
        for item in items
        if (question := HISTORY_TURN.read(item, "question")) is not None
        and (answer := HISTORY_TURN.read(item, "answer")) is not None
    ]
    return list(reversed(turns))
