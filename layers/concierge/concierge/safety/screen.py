"""The local screen: is there an instruction to the assistant hidden in this text?

A question, a history or a retrieved passage is data the models read; the screen looks in it for
the marks of injected instructions (concierge.safety.patterns): setting the instructions aside,
showing the prompt, a persona without rules, a claimed mode or authority, forged conversation
markup, data carried away in links, refusals forbidden, rules declared void, instructions
addressed to an assistant that reads a document, and the same wrapped in encodings.

It is pure Python (no network, no library) and runs before any model call, in well under 2 ms
for a question. It is a cheap first layer, not the only one: Bedrock Guardrails and delimited
prompts stand behind it.

Two halves decide together. The patterns give each family a strength: a family counts once,
with its two strongest signals (so a long document that mentions rules and prompts many times
does not add up to an attack), and the families combine like independent pieces of evidence
(1 - Π(1 - w)). The learned model (concierge.safety.learned) weighs those strengths with the
words of the text. A text is flagged when the model's probability reaches its threshold, or
when the patterns alone are sure (a short, blunt "Ignore all previous instructions" has too
few words for the model to be sure of). The score is on one scale for both: 0.5 and above is
flagged.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from concierge.safety.learned import features, load_model
from concierge.safety.patterns import CASED_SIGNALS, SIGNALS, Signal
from concierge.text import fold

# The score at and above which a text is flagged.
THRESHOLD = 0.5
# The patterns' combined strength that flags a text whatever the learned model says.
SURE = 0.9
# Flagged by the learned model with no pattern family to name.
WORDING = "injection_wording"
Kind = Literal["question", "document"]

# Zero-width and direction marks: invisible, and splitting a word without changing how it reads.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Letters of other scripts that look Latin (Cyrillic, Greek): a Cyrillic "о" reads as "o".  # noqa: RUF003
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁɡһкмтвнАЕОРСУХІЈЅКМТВНαοεικνρτυχΑΒΕΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdghkmtbhAEOPCYXIJSKMTBHaoeikvptuxABEHIKMNOPTYX",
)
# Single letters with one separator, the same all along: "i g n o r e", "i.g.n.o.r.e"; a wider
# gap ("v e r g i s s   d e i n e") ends the word.
_SPACED = re.compile(r"\b[a-z](?P<gap>[ .\-_*/|]{1,2})(?:[a-z](?P=gap)){2,}[a-z]\b")
_SEPARATORS = re.compile(r"[ .\-_*/|]")
# Words that mix letters with digits or symbols used as letters: "1gn0r3", "instruct!ons".
_LEET_WORD = re.compile(r"\b(?=[\w@$!|]*[a-z])(?=[\w@$!|]*[0-9@$!|])[\w@$!|]{3,}\b")
_LEET = str.maketrans("013457@$!|", "oieastasii")
_SPACES = re.compile(r"[ \t\r\f\v]+")
# Encoded payloads worth decoding: long base64 runs, hex runs.
_BASE64 = re.compile(r"(?<![\w+/=])[A-Za-z0-9+/]{16,}={0,2}(?![\w+/=])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[ :]?){12,}\b")
_ROT13_HINT = re.compile(r"rot\W?13|caesar|casar|cesar|cesare", re.IGNORECASE)
_REVERSE_HINT = re.compile(
    r"revers|backwards|ruckwarts|umgekehrt|a l'envers|al reves|al contrario|invertit|rovescio",
    re.IGNORECASE,
)
# Quoted fragments, joined in order, undo payload splitting.
_QUOTED = re.compile(r"[\"'«“‘]([^\"'«»“”‘’\n]{1,80})[\"'»”’]")  # noqa: RUF001


@dataclass(frozen=True)
class Verdict:
    flagged: bool
    score: float
    # The families that matched, strongest first: names, never the text that matched.
    reasons: tuple[str, ...]


CLEAN = Verdict(flagged=False, score=0.0, reasons=())


def normalise(text: str) -> str:
    """The text as a reader sees it: invisible characters dropped, look-alike letters and
    full-width forms made plain, lower case without accents, spaced-out and leet-spelled words
    joined, runs of spaces made one."""
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)
    text = fold(text)
    text = _SPACED.sub(lambda match: _SEPARATORS.sub("", match.group()), text)
    text = _LEET_WORD.sub(lambda match: match.group().translate(_LEET), text)
    return _SPACES.sub(" ", text)


def screen(text: str, kind: Kind = "question") -> Verdict:
    """The verdict on one text. `kind` is where it comes from: a user's question, or a
    document (ingested, or retrieved as a passage); both are screened for every family."""
    if not text.strip():
        return CLEAN
    plain, strengths = evidence(text, kind)
    model = load_model()
    patterns = _either(*strengths.values())
    if model is None:
        score = patterns
    else:
        probability = model.probability(features(plain, strengths, kind))
        score = _on_one_scale(probability, model.threshold(kind))
        if patterns >= SURE:
            score = max(score, patterns)
    flagged = score >= THRESHOLD
    reasons = tuple(sorted(strengths, key=lambda family: (-strengths[family], family)))
    if flagged and not reasons:
        reasons = (WORDING,)
    return Verdict(flagged=flagged, score=round(score, 3), reasons=reasons)


def _on_one_scale(probability: float, threshold: float) -> float:
    """The model's probability stretched so that its threshold is 0.5, the screen's."""
    if probability < threshold:
        return THRESHOLD * probability / threshold
    return THRESHOLD + (1 - THRESHOLD) * (probability - threshold) / (1 - threshold)


def evidence(text: str, kind: Kind = "question") -> tuple[str, dict[str, float]]:
    """What the screen reads in `text`: its normalised form (with whatever an encoding hid in
    it appended) and the strength of each pattern family found."""
    plain = normalise(text)
    strengths = _strengths(text, kind)
    for hidden in _hidden_texts(text):
        # What an encoding hid counts as the family it is, and as obfuscation.
        found = _strengths(hidden, kind)
        if found:
            plain += "\n" + normalise(hidden)
            strongest = max(found.values())
            found["obfuscation"] = max(found.get("obfuscation", 0.0), strongest)
            for family, weight in found.items():
                strengths[family] = max(strengths.get(family, 0.0), weight)
    return plain, strengths


def screen_conversation(questions: list[str]) -> Verdict:
    """The verdict on a user's recent questions, each on its own and the latest few read as one
    text (an instruction can be split across turns)."""
    verdicts = [screen(question) for question in questions]
    if len(questions) > 1:
        verdicts.append(screen("\n".join(questions[-4:])))
    return max(verdicts, key=lambda verdict: verdict.score, default=CLEAN)


def _strengths(text: str, kind: Kind = "question") -> dict[str, float]:
    """How strongly each family is present in `text`."""
    plain = normalise(text)
    strengths = _match(SIGNALS, plain, kind) | _match(CASED_SIGNALS, text, kind)
    if plain != fold(text) and strengths:
        # It only reads as an instruction once the disguise is undone.
        disguised = _match(SIGNALS, _SPACES.sub(" ", fold(text)), kind)
        if max(strengths.values()) > max(disguised.values(), default=0.0):
            strengths["obfuscation"] = max(strengths.values())
    return strengths


def _match(signals: tuple[Signal, ...], text: str, kind: Kind) -> dict[str, float]:
    found: dict[str, list[float]] = {}
    for signal in signals:
        if kind in signal.kinds and signal.pattern.search(text):
            found.setdefault(signal.family, []).append(signal.weight)
    return {family: _either(*sorted(weights)[-2:]) for family, weights in found.items()}


def _either(*weights: float) -> float:
    """The chance that at least one of independent signals is right."""
    remaining = 1.0
    for weight in weights:
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _hidden_texts(text: str) -> list[str]:
    """Texts an encoding may hide in `text`: decoded base64 and hex runs, the ROT13 and the
    reversed reading when the text asks for them, and quoted fragments put together."""
    hidden = [decoded for run in _BASE64.findall(text) if (decoded := _from_base64(run))]
    hidden += [decoded for run in _HEX.findall(text) if (decoded := _from_hex(run))]
    if _ROT13_HINT.search(text):
        hidden.append(codecs.decode(text, "rot13"))
    if _REVERSE_HINT.search(text):
        hidden.append(text[::-1])
    fragments = _QUOTED.findall(text)
    if len(fragments) >= 2:
        hidden.append(" ".join(fragments))
        hidden.append("".join(fragments))
    return hidden


def _readable(data: bytes) -> str | None:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(ch.isalpha() or ch.isspace() for ch in decoded)
    return decoded if decoded and letters / len(decoded) > 0.8 else None


def _from_base64(run: str) -> str | None:
    try:
        return _readable(base64.b64decode(run + "=" * (-len(run) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None


def _from_hex(run: str) -> str | None:
    try:
        return _readable(bytes.fromhex(re.sub(r"[ :]", "", run)))
    except ValueError:
        return None
