"""The `offline` model: deterministic, no network, and honest about what it is.

It is not a language model. Classify matches the question against the category descriptions
(a category only when it alone matches best, else the default, which searches them all) and
detects the language from stopwords (it cannot translate: its `search_query` is always
null); condense joins a follow-up that leans on the conversation ("which of them…") with the
previous question and classifies the result; answer extracts the passage sentences with the
most evidence for the question, favouring the best-ranked passages, and cites the passages it
took them from (quoting them after a lead-in in the question's language when they are in
another: it cannot translate). It writes the same reply formats a real model is asked for, so
every step parses all adapters alike.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from concierge.adapters.llm.port import ModelReply, ModelRequest, estimate_tokens
from concierge.errors import ModelInvocationError
from concierge.text import detect_language, sentences, terms, words

OFFLINE_SPEC = "offline"

# Words that make a question lean on earlier turns.
_ANAPHORA = frozenset(
    [
        "it",
        "its",
        "they",
        "them",
        "those",
        "these",
        "that",
        "this",
        "one",
        "ones",
        "he",
        "she",
        "his",
        "her",
        "their",
        "ellos",
        "ellas",
        "eso",
        "esa",
        "ese",
        "esos",
        "esas",
        "esto",
        "lo",
        "la",
        "los",
        "las",
        "cual",
        "cuales",
        "es",
        "sie",
        "ihr",
        "ihre",
        "diese",
        "dieser",
        "dieses",
        "davon",
    ]
)
_MAX_ANSWER_SENTENCES = 3
# What the answer says, in the question's language, before sentences it quotes from documents
# in another language (it cannot translate them).
_QUOTING = {
    "en": ("This is what our documents say, quoted as written:", "“", "”"),
    "es": ("Esto es lo que dicen nuestros documentos, citados tal cual:", "«", "»"),
    "de": ("Das steht dazu in unseren Unterlagen, im Wortlaut zitiert:", "„", "“"),
    "fr": ("Voici ce que disent nos documents, cités tels quels :", "« ", " »"),
    "it": ("Ecco cosa dicono i nostri documenti, citati testualmente:", "«", "»"),
}
# What a question term in a passage's title counts for, against one in the sentence itself.
_TITLE_SHARE = 0.5


class OfflineModel:
    spec = OFFLINE_SPEC

    def generate(self, request: ModelRequest) -> ModelReply:
        if request.task == "judge":
            raise ModelInvocationError("the offline model cannot judge: name a real model")
        if request.task == "classify":
            text = _classify(request.inputs)
        elif request.task == "condense":
            text = _condense(request.inputs)
        else:
            text = _answer(request.inputs)
        return ModelReply(
            text=text,
            model=OFFLINE_SPEC,
            input_tokens=estimate_tokens(request.system + request.prompt),
            output_tokens=estimate_tokens(text),
            estimated=True,
        )


def _classify(inputs: dict[str, Any]) -> str:
    return json.dumps(_classification(inputs["question"], inputs))


def _classification(question: str, inputs: dict[str, Any]) -> dict[str, str | None]:
    descriptions: dict[str, str] = inputs["categories"]
    question_terms = set(terms(question))
    scores = {
        name: len(question_terms & set(terms(f"{name} {description}")))
        for name, description in descriptions.items()
    }
    # A category only when it alone shares the most words with the question: a tie is no
    # evidence, and a wrong category costs the search more than none (the default searches
    # every category).
    ranked = sorted(scores, key=lambda name: scores[name], reverse=True)
    best = ranked[0] if ranked and scores[ranked[0]] > 0 else None
    if best is not None and len(ranked) > 1 and scores[ranked[1]] == scores[best]:
        best = None
    category = best if best is not None else inputs["default_category"]
    return {"category": category, "language": detect_language(question), "search_query": None}


def _condense(inputs: dict[str, Any]) -> str:
    question: str = inputs["question"]
    standalone = _standalone(question, inputs["history"])
    # What the latest question asks decides the category ("which is cheapest?" is pricing
    # whatever the earlier turn was about); the conversation only when it says nothing.
    classification = _classification(standalone, inputs)
    asked = _classification(question, inputs)["category"]
    if asked != inputs["default_category"]:
        classification["category"] = asked
    return json.dumps({"question": standalone, **classification})


def _standalone(question: str, history: list[dict[str, str]]) -> str:
    leans_on_context = bool(set(words(question)) & _ANAPHORA) or len(terms(question)) < 2
    if not history or not leans_on_context:
        return question
    previous = history[-1]["question"]
    return f"{question.rstrip()} ({previous.strip()})"


def _answer(inputs: dict[str, Any]) -> str:
    """The (at most three) passage sentences with the most evidence for the question, in the
    passages' order, each marked with its passage: so every passage the answer uses is cited,
    in order of relevance, and a passage no chosen sentence comes from is not.

    A sentence's evidence is the question terms it shares, each weighted by how few of the
    passages' sentences have it (a word every passage uses tells nothing), plus half the weight
    of those only its passage's title shares (the title says what the passage is about), all
    divided by its passage's retrieval rank: like a reader who starts with the best passages,
    a lower-ranked passage is used only when it says clearly more.

    The question's terms include its search_query's (the question in the documents' language,
    when retrieval searched with it). Sentences of a document in another language than the
    question's are quoted as they are, after a lead-in in the question's language."""
    question_terms = set(terms(inputs["question"])) | set(terms(inputs.get("search_query") or ""))
    units: list[tuple[int, int, str, set[str], set[str]]] = []
    for rank, passage in enumerate(inputs["passages"], start=1):
        about = question_terms & set(terms(passage.get("title", "")))
        for position, sentence in enumerate(sentences(passage["text"])):
            units.append((rank, position, sentence, question_terms & set(terms(sentence)), about))
    having = Counter(term for unit in units for term in unit[3])

    def weight(term: str) -> float:
        # A title term no sentence has is as rare as a term can be.
        return math.log(1 + len(units) / max(having[term], 1))

    scored = [
        (
            (sum(map(weight, shared)) + _TITLE_SHARE * sum(map(weight, about - shared))) / rank,
            -rank,
            -position,
            sentence,
        )
        for rank, position, sentence, shared, about in units
        if shared
    ]
    if not scored:
        return "NO_ANSWER"
    best = sorted(scored, reverse=True)[:_MAX_ANSWER_SENTENCES]
    # In the passages' order: the answer reads naturally and its markers run by relevance.
    best.sort(key=lambda item: (-item[1], -item[2]))
    language = inputs.get("language", "")
    passages = inputs["passages"]
    # A passage without a language (a knowledge base that does not record it) is taken as
    # the question's.
    foreign = any(
        passages[-rank - 1].get("language", "") not in ("", language) for _, rank, _, _ in best
    )
    lead_in, opening, closing = _QUOTING.get(language, ("", "", "")) if foreign else ("", "", "")
    said = [
        f"{opening}{_as_statement(sentence)}{closing} [{-rank}]" for _, rank, _, sentence in best
    ]
    return " ".join([lead_in, *said] if lead_in else said)


def _as_statement(sentence: str) -> str:
    sentence = re.sub(r"\s+", " ", sentence).strip()
    return sentence if sentence[-1:] in ".!?:" else sentence + "."
