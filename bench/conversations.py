"""The replay's scripted conversations (bench/conversations.jsonl), every turn labelled with
its kind: what the answer cache could at best do with it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.figures import table

DEFAULT_PATH = Path(__file__).with_name("conversations.jsonl")
FIRST_ASK = "first ask"  # a first turn whose cache-key form comes again later
REPEAT_EXACT = "repeat, exact"  # a first turn asked before, word for word
REPEAT_VARIANT = "repeat, variant"  # asked before up to what the cache key forgives
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
    normalised: str  # the cache-key form of a first turn ("" for a follow-up)

    @property
    def is_follow_up(self) -> bool:
        return self.number > 0


@dataclass(frozen=True)
class Conversation:
    id: str
    language: str
    turns: tuple[Turn, ...]


def parse(records: Iterable[dict[str, Any]], where: str = "conversations") -> list[Conversation]:
    """`{"id", "language", "turns": [...]}` records, in replay order, every turn labelled."""
    from concierge.cache_keys import normalise_question

    raw = [
        (str(r["id"]), str(r.get("language", "en")), [str(t) for t in r["turns"]]) for r in records
    ]
    if not all(turns and all(text.strip() for text in turns) for _, _, turns in raw):
        raise ValueError(f"{where}: a conversation needs non-empty turns")
    if len({conversation_id for conversation_id, _, _ in raw}) != len(raw):
        raise ValueError(f"{where}: conversation ids must be unique")
    asked = Counter(normalise_question(turns[0]) for _, _, turns in raw)
    seen_normalised: set[str] = set()
    seen_exact: set[str] = set()
    conversations = []
    for conversation_id, language, (first, *rest) in raw:
        normalised = normalise_question(first)
        if normalised in seen_normalised:
            kind = REPEAT_EXACT if first in seen_exact else REPEAT_VARIANT
        else:
            kind = FIRST_ASK if asked[normalised] > 1 else ONE_OFF
        seen_normalised.add(normalised)
        seen_exact.add(first)
        turns = [Turn(conversation_id, 0, first, language, kind, normalised)]
        turns += [
            Turn(conversation_id, n, text, language, FOLLOW_UP, "")
            for n, text in enumerate(rest, start=1)
        ]
        conversations.append(Conversation(conversation_id, language, tuple(turns)))
    return conversations


def load(path: Path = DEFAULT_PATH) -> list[Conversation]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return parse((json.loads(line) for line in lines if line.strip()), str(path))


def mix(conversations: list[Conversation]) -> str:
    """The turns by kind, by language, and the conversations by length."""
    turns = [turn for conversation in conversations for turn in conversation.turns]
    kinds = Counter(turn.kind for turn in turns)
    languages = Counter(turn.language for turn in turns).most_common()
    lengths = sorted(Counter(len(conversation.turns) for conversation in conversations).items())
    rows = [[f"`{k}`", str(kinds[k]), f"{kinds[k] / len(turns):.0%}"] for k in TURN_KINDS]
    return "\n".join(
        [
            table(["turn", "n", "share"], [*rows, ["all", str(len(turns)), "100%"]]),
            "",
            f"{len(conversations)} conversations; turns by language: "
            + ", ".join(f"{language} {n}" for language, n in languages)
            + "; conversations by number of turns: "
            + ", ".join(f"{length}: {n}" for length, n in lengths)
            + ".",
        ]
    )
