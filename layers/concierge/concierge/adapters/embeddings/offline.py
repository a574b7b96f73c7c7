"""The `offline` embedder: deterministic, no network, pure Python — and lexical.

It is not a language model and knows no synonyms: "refund" and "money back" share nothing,
"Austria" and "Spain" differ by exactly one word. A text becomes three groups of features:

* its content terms, from `concierge.text.terms` with the stemmer of the language that
  `detect_language` finds (stopwords dropped; return/returned, devolver/devolución,
  Lieferung/liefern conflated). A term with a digit (Cirrus *2*, *30* days, *80* €) counts
  twice: a number usually decides the answer;
* the character trigrams of its content words, accent-folded but not stemmed, which catch
  what the stemmers miss (German compounds, typos, forms of other languages);
* whether it is negated (not, n't, no, never, nunca, sin, nicht, kein, nie, ohne…). Those are
  stopwords, invisible to the other groups, so "Which items can I return?" and "Which items
  can't I return?" would otherwise be the same vector.

Each group is scaled to a fixed weight, its features are hashed (BLAKE2b, signed) into
`DIMENSIONS` dimensions, and the sum is L2-normalised. Two questions score close when they use
the same words, whatever they mean: `bench/semantic.py` measures how often that misleads.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

from concierge.adapters.embeddings.port import normalised
from concierge.text import ALL_STOPWORDS, detect_language, terms, words

OFFLINE_SPEC = "offline"
DIMENSIONS = 512

_TERM_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.7
_NEGATION_WEIGHT = 0.5
_DIGIT_TERM_COUNT = 2.0

# Folded words (see concierge.text.words) that negate a question. "can't" is split into
# "can" + "t", "don't" into "don" + "t".
_NEGATION_WORDS = {
    "en": "not no never nothing none nobody nor without cannot cant dont doesnt t don doesn "
    "didn isn aren wasn weren won hasn haven hadn couldn shouldn wouldn",
    "es": "no nunca nada nadie ningun ninguno ninguna ni sin tampoco",
    "de": "nicht kein keine keinen keinem keiner keines nie niemals nichts ohne",
}
_NEGATIONS = frozenset(word for spaced in _NEGATION_WORDS.values() for word in spaced.split())


@lru_cache(maxsize=65_536)
def _slot(feature: str) -> tuple[int, float]:
    """The dimension of a feature and its sign (signed hashing keeps collisions unbiased)."""
    value = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest())
    return value % DIMENSIONS, 1.0 if value >> 63 else -1.0


def features(text: str) -> tuple[dict[str, float], dict[str, float], bool]:
    """The weighted content terms, the character trigrams and whether `text` is negated."""
    language = detect_language(text)
    stems: dict[str, float] = {}
    for term in terms(text, language):
        count = _DIGIT_TERM_COUNT if any(ch.isdigit() for ch in term) else 1.0
        stems[term] = stems.get(term, 0.0) + count
    trigrams: dict[str, float] = {}
    negated = False
    for word in words(text):
        negated = negated or word in _NEGATIONS
        if word in ALL_STOPWORDS or (len(word) == 1 and not word.isdigit()):
            continue
        padded = f"<{word}>"
        for start in range(len(padded) - 2):
            gram = padded[start : start + 3]
            trigrams[gram] = trigrams.get(gram, 0.0) + 1.0
    return stems, trigrams, negated


def _add(vector: list[float], group: dict[str, float], prefix: str, weight: float) -> None:
    norm = math.sqrt(sum(value * value for value in group.values()))
    if not norm:
        return
    scale = weight / norm
    for feature, value in group.items():
        dimension, sign = _slot(prefix + feature)
        vector[dimension] += sign * value * scale


class OfflineEmbedder:
    """Lexical vectors of `DIMENSIONS` floats; the same text always gives the same vector."""

    spec = OFFLINE_SPEC
    dimensions = DIMENSIONS

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        stems, trigrams, negated = features(text)
        vector = [0.0] * DIMENSIONS
        _add(vector, stems, "t:", _TERM_WEIGHT)
        _add(vector, trigrams, "c:", _TRIGRAM_WEIGHT)
        if negated:
            _add(vector, {"negated": 1.0}, "n:", _NEGATION_WEIGHT)
        return normalised(vector)
