"""Language-light text processing shared by the local index and the offline model.

Deliberately small: accent folding, a suffix-stripping stemmer good enough for English,
Spanish and German lexical matching, stopwords, and stopword-based language detection.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'¿¡(A-ZÁÉÍÓÚÑÄÖÜ0-9])")

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "a",
            "an",
            "and",
            "are",
            "as",
            "at",
            "be",
            "by",
            "can",
            "do",
            "does",
            "for",
            "from",
            "has",
            "have",
            "how",
            "i",
            "if",
            "in",
            "is",
            "it",
            "its",
            "me",
            "my",
            "of",
            "on",
            "or",
            "our",
            "so",
            "that",
            "the",
            "their",
            "them",
            "there",
            "these",
            "they",
            "this",
            "those",
            "to",
            "us",
            "was",
            "we",
            "what",
            "when",
            "where",
            "which",
            "who",
            "why",
            "will",
            "with",
            "you",
            "your",
            "yours",
            "about",
            "any",
            "please",
            "tell",
            "much",
            "many",
            "would",
            "could",
            "should",
            "did",
            "am",
            "were",
            "been",
            "being",
            "than",
            "then",
            "also",
            "just",
            "get",
        ]
    ),
    "es": frozenset(
        [
            "a",
            "al",
            "como",
            "con",
            "cual",
            "cuales",
            "cuando",
            "de",
            "del",
            "donde",
            "el",
            "ella",
            "ellas",
            "ellos",
            "en",
            "es",
            "esa",
            "ese",
            "eso",
            "esta",
            "este",
            "esto",
            "estos",
            "hay",
            "la",
            "las",
            "le",
            "les",
            "lo",
            "los",
            "mas",
            "me",
            "mi",
            "mis",
            "muy",
            "no",
            "nos",
            "o",
            "para",
            "pero",
            "por",
            "que",
            "quien",
            "se",
            "si",
            "sin",
            "sobre",
            "su",
            "sus",
            "te",
            "tu",
            "tus",
            "un",
            "una",
            "unas",
            "uno",
            "unos",
            "y",
            "ya",
            "vosotros",
            "usted",
            "ustedes",
            "puedo",
            "puede",
            "cuanto",
            "cuanta",
            "cuantos",
            "son",
            "estan",
            "tengo",
            "tiene",
            "tienen",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "den",
            "dem",
            "des",
            "ein",
            "eine",
            "einen",
            "einem",
            "einer",
            "und",
            "oder",
            "aber",
            "ist",
            "sind",
            "war",
            "wie",
            "was",
            "wer",
            "wo",
            "wann",
            "warum",
            "mit",
            "fur",
            "auf",
            "aus",
            "bei",
            "bis",
            "im",
            "in",
            "an",
            "am",
            "zu",
            "zum",
            "zur",
            "von",
            "vom",
            "ich",
            "du",
            "er",
            "sie",
            "es",
            "wir",
            "ihr",
            "mein",
            "meine",
            "ihre",
            "ihren",
            "unser",
            "nicht",
            "kein",
            "keine",
            "auch",
            "noch",
            "nur",
            "kann",
            "konnen",
            "habe",
            "hat",
            "haben",
            "gibt",
            "welche",
            "welcher",
            "welches",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "un",
            "une",
            "des",
            "du",
            "de",
            "et",
            "ou",
            "mais",
            "est",
            "sont",
            "pour",
            "par",
            "avec",
            "sans",
            "sur",
            "dans",
            "au",
            "aux",
            "ce",
            "cette",
            "ces",
            "qui",
            "que",
            "quoi",
            "quel",
            "quelle",
            "quels",
            "comment",
            "pourquoi",
            "quand",
            "ou",
            "je",
            "tu",
            "il",
            "elle",
            "nous",
            "vous",
            "ils",
            "elles",
            "mon",
            "ma",
            "mes",
            "votre",
            "vos",
            "notre",
            "nos",
            "ne",
            "pas",
            "plus",
        ]
    ),
}
ALL_STOPWORDS = frozenset().union(*STOPWORDS.values())

# Longest first: strip at most one suffix, keep a stem of at least three letters.
_SUFFIXES = sorted(
    {
        "est",
        "er",
        "ers",
        "ies",
        "es",
        "s",
        "ing",
        "ed",
        "ly",  # English
        "ciones",
        "cion",
        "mente",
        "os",
        "as",
        "o",
        "a",
        "ar",
        "ir",
        "ado",
        "ada",
        "idos",  # Spanish
        "ungen",
        "ung",
        "en",
        "ern",
        "e",  # German ("n" alone would turn "return" into "retur")
    },
    key=len,
    reverse=True,
)


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Envíos' -> 'envios', 'Größe' -> 'grosse'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Content terms of `text`: folded, stopwords removed, stemmed."""
    return [stem(w) for w in words(text) if w not in ALL_STOPWORDS and (len(w) > 1 or w.isdigit())]


def detect_language(text: str, default: str = "en") -> str:
    """The language whose stopwords `text` uses most; `default` when there is no evidence."""
    tokens = words(text)
    counts = Counter({lang: sum(t in stops for t in tokens) for lang, stops in STOPWORDS.items()})
    # Spanish punctuation and letters are strong signals on short questions.
    if "¿" in text or "¡" in text or "ñ" in text.lower():
        counts["es"] += 2
    if any(ch in text.lower() for ch in "äöüß"):
        counts["de"] += 2
    language, best = counts.most_common(1)[0]
    return language if best > 0 else default


def sentences(text: str) -> list[str]:
    """Split prose into sentences. Markdown headings are titles, not statements: skipped.
    List items and table rows become their own units."""
    units: list[str] = []
    for raw_line in text.splitlines():
        stripped = raw_line.strip()
        if stripped.startswith("#") or set(stripped) <= set("|-: "):
            continue
        line = stripped.lstrip("-*").strip().strip("|").replace(" | ", ", ").strip()
        if line:
            units.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    return units
