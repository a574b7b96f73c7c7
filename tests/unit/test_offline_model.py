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


def test_classify_does_not_guess_between_categories_that_match_alike() -> None:
    # Given a question sharing one word with each of two categories' descriptions
    request = _request(
        "classify",
        question="What is the cheapest of your tents?",
        categories=CATEGORIES,
        default_category="general",
    )

    # When the offline model classifies it
    reply = OfflineModel().generate(request)

    # Then it picks neither: the default category, which searches them all
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


def test_a_question_in_another_language_is_answered_by_quoting_the_documents() -> None:
    # Given a German question, its English search_query, and English passages
    passages = [
        {"text": "Tents carry a five-year warranty.", "language": "en"},
        {"text": "Our shop is in Innsbruck.", "language": "en"},
    ]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request(
            "answer",
            question="Wie lange gilt die Garantie auf Zelte?",
            language="de",
            search_query="How long is the warranty on tents?",
            passages=passages,
        )
    )

    # Then it finds the sentence through the search_query's words and quotes it as written,
    # after a German lead-in, citing its passage
    assert reply.text == (
        "Das steht dazu in unseren Unterlagen, im Wortlaut zitiert:"
        " „Tents carry a five-year warranty.“ [1]"
    )


def test_answer_cites_the_passages_it_uses_in_order_of_relevance_and_no_other() -> None:
    # Given three passages in retrieval order: the first barely relevant, the second unrelated,
    # the third holding the question's telling words
    passages = [
        {"text": "The Pika stove is light."},
        {"text": "Our shop is in Innsbruck."},
        {"text": "The Kestrel stove costs 119 EUR."},
    ]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request("answer", question="What does the Kestrel stove cost?", passages=passages)
    )

    # Then it cites the two passages it took sentences from, best-ranked first, and not the
    # unrelated one
    assert reply.text == "The Pika stove is light. [1] The Kestrel stove costs 119 EUR. [3]"


def test_answer_leans_on_the_best_ranked_passage_over_one_sharing_more_words() -> None:
    # Given a best-ranked passage that answers in three sentences, and a fourth-ranked one whose
    # single sentence shares more of the question's words than any of them
    passages = [
        {
            "text": "The Pika stove weighs 300 g, so it is not heavy. The Pika stove burns gas. "
            "Fuel for the Pika stove is sold in our shops."
        },
        {"text": "Our shop is in Innsbruck."},
        {"text": "Tents are sturdy."},
        {"text": "Pika stove: heavy duty, burns any fuel."},
    ]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request(
            "answer",
            question="How heavy is the Pika stove and what fuel does it burn?",
            passages=passages,
        )
    )

    # Then the answer comes from the best-ranked passage alone, and cites only it
    assert reply.text.count("[1]") == 3
    assert "[4]" not in reply.text


def test_answer_uses_a_lower_ranked_passage_whose_title_names_what_is_asked() -> None:
    # Given a best-ranked passage about tents that are heavy, and a second one titled with the
    # stove the question names, whose text does not repeat the name
    passages = [
        {
            "title": "Tents",
            "text": "The Cirrus is heavy. The Nimbus is heavy. The Stratus is heavy.",
        },
        {"title": "Kestrel stove", "text": "It is heavy for a stove of its size: 400 g."},
    ]

    # When the offline model answers
    reply = OfflineModel().generate(
        _request("answer", question="How heavy is the Kestrel?", passages=passages)
    )

    # Then the stove's passage is used and cited, after the better-ranked one
    assert reply.text.endswith("It is heavy for a stove of its size: 400 g. [2]")


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
