import json

from concierge.adapters.llm.offline import OfflineModel
from concierge.adapters.llm.port import ModelRequest

CATEGORIES = {"products": "tents, backpacks", "pricing": "prices, cheapest, cost"}


def _request(task: str, **inputs: object) -> ModelRequest:
    return ModelRequest(
        task=task,  # type: ignore[arg-type]
        system="s",
        prompt="p",
        inputs=inputs,
        max_tokens=100,
        temperature=0,
        top_p=1,
        timeout_s=5,
    )


def test_classify_picks_the_category_whose_description_matches() -> None:
    # Given a question with a word from the pricing category's description
    request = _request(
        "classify",
        question="What is the cheapest option?",
        categories=CATEGORIES,
        default_category="general",
    )

    # When the offline model classifies it
    reply = OfflineModel().generate(request)

    # Then it picks pricing, in English
    parsed = json.loads(reply.text)
    assert parsed["category"] == "pricing"
    assert parsed["language"] == "en"


def test_classify_falls_back_to_the_default_category() -> None:
    # Given a question that matches no category's description
    request = _request(
        "classify", question="Hello there", categories=CATEGORIES, default_category="general"
    )

    # When the offline model classifies it
    reply = OfflineModel().generate(request)

    # Then it picks the default category
    assert json.loads(reply.text)["category"] == "general"


_MENU = {
    "categories": {"pricing": "prices, cheapest", "policies": "warranty, returns"},
    "default_category": "general",
}


def _condensed(question: str, history: list[dict[str, str]]) -> dict[str, str]:
    reply = OfflineModel().generate(
        _request("condense", question=question, history=history, **_MENU)
    )
    parsed: dict[str, str] = json.loads(reply.text)
    return parsed


def test_condense_joins_a_follow_up_with_the_previous_question_and_classifies_it() -> None:
    # Given a conversation about what the shop sells
    history = [{"question": "What do you sell?", "answer": "Tents."}]

    # When a follow-up that depends on it is condensed
    condensed = _condensed("Which of them is cheapest?", history)

    # Then the question carries both turns, and is classified as pricing, in English
    assert "Which of them is cheapest?" in condensed["question"]
    assert "What do you sell?" in condensed["question"]
    assert (condensed["category"], condensed["language"]) == ("pricing", "en")


def test_condense_keeps_a_self_contained_question() -> None:
    # Given a conversation, and a question that stands on its own
    history = [{"question": "What do you sell?", "answer": "Tents."}]
    question = "How long is the warranty on backpacks?"

    # When it is condensed
    condensed = _condensed(question, history)

    # Then the question is kept as asked, and classified; the offline model cannot translate,
    # so it never writes a search_query
    assert condensed == {
        "question": question,
        "category": "policies",
        "language": "en",
        "search_query": None,
    }


def test_answer_extracts_and_cites_matching_sentences() -> None:
    # Given two passages, the second with a sentence that answers the question
    passages = [
        {"text": "Our shop is in Innsbruck."},
        {"text": "The Pika stove is the cheapest product at 39 EUR. Tents are sturdy."},
    ]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request("answer", question="What is the cheapest product?", passages=passages)
    )

    # Then the answer is that sentence alone, citing the second passage
    assert reply.text == "The Pika stove is the cheapest product at 39 EUR. [2]"


def test_answer_says_no_answer_when_nothing_matches() -> None:
    # Given a passage unrelated to the question
    passages = [{"text": "Our shop is in Innsbruck."}]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request("answer", question="Capital of Peru?", passages=passages)
    )

    # Then it says there is no answer
    assert reply.text == "NO_ANSWER"


def test_usage_is_marked_estimated() -> None:
    # When the offline model handles a request
    reply = OfflineModel().generate(
        _request("condense", question="Hi there friend", history=[], **_MENU)
    )

    # Then its token counts are there, marked as estimates
    assert reply.estimated is True
    assert reply.input_tokens > 0
