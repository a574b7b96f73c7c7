"""Cache keys: the same question, asked the same way, against the same knowledge and prompts."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s?!.。？！¿¡,;:]+$")  # noqa: RUF001 - full-width on purpose
_LEADING_PUNCTUATION = re.compile(r"^[\s¿¡]+")


def normalise_question(question: str) -> str:
    """NFKC, case-folded, whitespace collapsed, surrounding question punctuation dropped."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = _SPACES.sub(" ", text).strip()
    text = _TRAILING_PUNCTUATION.sub("", text)
    return _LEADING_PUNCTUATION.sub("", text)


def cache_key(question: str, kb_version: str, prompt_versions: str) -> str:
    material = "\x1f".join((normalise_question(question), kb_version, prompt_versions))
    return "q#" + hashlib.sha256(material.encode("utf-8")).hexdigest()
