"""The sample events in events/ stay valid inputs of their functions."""

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from concierge.api import parse_chat_request
from concierge.models.state import AnswerInput, ClassifyInput, CondenseInput, RetrieveInput

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("classify.json", ClassifyInput),
        ("condense.json", CondenseInput),
        ("retrieve.json", RetrieveInput),
        ("answer.json", AnswerInput),
    ],
)
def test_step_events_match_their_input_models(name: str, model: type[BaseModel]) -> None:
    model.model_validate(json.loads((EVENTS / name).read_text(encoding="utf-8")))


def test_the_chat_event_is_a_valid_request() -> None:
    event = json.loads((EVENTS / "api-chat.json").read_text(encoding="utf-8"))
    assert parse_chat_request(event, 65_536).question == "What do you sell?"
