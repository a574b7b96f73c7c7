"""Cache keys: the same question, in the same language, against the same knowledge, prompts,
answer model and A/B variant. Anything that could change the answer is part of the key, so a
re-ingest, a prompt change or a new answer model never serves a stale answer, an answer is
never served in another language than it was written in, and a variant's answers stay its own
(its quality and cost are measured on what it answered).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_TRAILING_PUNCTUATION = re.compile(r"[\s?!.。？！¿¡,;:]+$")  # noqa: RUF001 - full-width on purpose
_LEADING_PUNCTUATION = re.compile(r"^[\s¿¡]+")
_SEPARATOR = "\x1f"


def normalise_question(question: str) -> str:
    """NFKC, case-folded, whitespace collapsed, surrounding question punctuation dropped."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = _SPACES.sub(" ", text).strip()
    text = _TRAILING_PUNCTUATION.sub("", text)
    return _LEADING_PUNCTUATION.sub("", text)


def cache_scope(
    kb_version: str, prompt_versions: str, answer_model: str, variant: str = "default"
) -> str:
    """Everything but the question and its language that an answer depends on, in one string.
    The `default` variant adds nothing: the keys of a deployment without variants stay as
    they were."""
    parts = (kb_version, prompt_versions, answer_model)
    return _SEPARATOR.join(parts if variant == "default" else (*parts, variant))


def cache_key(question: str, language: str, scope: str) -> str:
    material = _SEPARATOR.join((normalise_question(question), language, scope))
    return "q#" + hashlib.sha256(material.encode("utf-8")).hexdigest()
