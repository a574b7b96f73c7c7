"""The scripted conversations of the replay (bench/conversations.jsonl) and their mix.

One JSON object a line: `{"id": "c01", "language": "en", "turns": ["first turn", "follow-up", ...]}`.
The file order is the replay order. Every conversation is one chat session: its first turn is
asked without history, the later turns lean on it.

The kind of every turn is derived here, before anything runs, with the product's own cache-key
normalisation (`concierge.cache_keys.normalise_question`), so the report can say what the mix
is and what the cache could at best do with it:

* `first ask`       a first turn whose normalised text comes again later (a popular question);
* `repeat, exact`   a first turn asked before, word for word;
* `repeat, variant` a first turn asked before, differing only in case, spacing or the
                    surrounding question punctuation (what the cache key forgives);
* `one-off`         a first turn whose normalised text is asked once (paraphrases included);
* `follow-up`       any later turn of a conversation.

The mix in the file was written before any run and is not tuned to the goals. It is meant to
look like help-desk FAQ traffic: most chats are one or two questions (1.5 turns on average);
a handful of popular questions (8 here, in three languages) make up over half of the first
turns; their repeats are either word for word (suggested-question buttons, links and copies
from FAQ pages) or differ only in case, spacing or punctuation; the rest is a long tail,
including paraphrases of the popular questions, which an exact-match cache cannot serve.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from concierge.cache_keys import normalise_question

DEFAULT_PATH = Path(__file__).with_name("conversations.jsonl")

FIRST_ASK = "first ask"
REPEAT_EXACT = "repeat, exact"
REPEAT_VARIANT = "repeat, variant"
ONE_OFF = "one-off"
FOLLOW_UP = "follow-up"
TURN_KINDS = (FIRST_ASK, REPEAT_EXACT, REPEAT_VARIANT, ONE_OFF, FOLLOW_UP)
REPEATS = (REPEAT_EXACT, REPEAT_VARIANT)


@dataclass(frozen=True)
class Turn:
    conversation: str
    number: int  # 0 = the first turn of its conversation
    text: str
    language: str
    kind: str
    # The cache-key form of the question (first turns only; follow-ups never use the cache).
    normalised: str

    @property
    def is_follow_up(self) -> bool:
        return self.number > 0


@dataclass(frozen=True)
class Conversation:
    id: str
    language: str
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Mix:
    conversations: int
    turns: int
    by_kind: dict[str, int]
    by_language: dict[str, int]
    popular_questions: int
    conversations_with_follow_ups: int
    longest: int

    @property
    def first_turns(self) -> int:
        return self.conversations

    @property
    def repeats(self) -> int:
        return sum(self.by_kind[kind] for kind in REPEATS)


def load(path: Path = DEFAULT_PATH) -> list[Conversation]:
    """The conversations in file order, every turn labelled with its kind."""
    raw: list[tuple[str, str, list[str]]] = []
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        turns = [str(text) for text in record["turns"]]
        if not turns or not all(text.strip() for text in turns):
            raise ValueError(f"{path}:{line_number}: a conversation needs non-empty turns")
        raw.append((str(record["id"]), str(record.get("language", "en")), turns))
    if len({conversation_id for conversation_id, _, _ in raw}) != len(raw):
        raise ValueError(f"{path}: conversation ids must be unique")

    asked = Counter(normalise_question(turns[0]) for _, _, turns in raw)
    seen_normalised: set[str] = set()
    seen_exact: set[str] = set()
    conversations = []
    for conversation_id, language, texts in raw:
        first = texts[0]
        normalised = normalise_question(first)
        if normalised in seen_normalised:
            kind = REPEAT_EXACT if first in seen_exact else REPEAT_VARIANT
        elif asked[normalised] > 1:
            kind = FIRST_ASK
        else:
            kind = ONE_OFF
        seen_normalised.add(normalised)
        seen_exact.add(first)
        labelled = [Turn(conversation_id, 0, first, language, kind, normalised)]
        labelled.extend(
            Turn(conversation_id, number, text, language, FOLLOW_UP, "")
            for number, text in enumerate(texts[1:], start=1)
        )
        conversations.append(Conversation(conversation_id, language, tuple(labelled)))
    return conversations


def mix(conversations: list[Conversation]) -> Mix:
    turns = [turn for conversation in conversations for turn in conversation.turns]
    by_kind = Counter(turn.kind for turn in turns)
    return Mix(
        conversations=len(conversations),
        turns=len(turns),
        by_kind={kind: by_kind.get(kind, 0) for kind in TURN_KINDS},
        by_language=dict(Counter(turn.language for turn in turns).most_common()),
        popular_questions=by_kind.get(FIRST_ASK, 0),
        conversations_with_follow_ups=sum(1 for c in conversations if len(c.turns) > 1),
        longest=max((len(c.turns) for c in conversations), default=0),
    )
