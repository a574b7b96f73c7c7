"""The learned half of the screen: a logistic regression over what the patterns found and the
words a text uses, trained on the project's attack and benign sets (bench/safety/).

The patterns (concierge.safety.patterns) are precise but only see the phrasings someone wrote
down; attacks come in endless wordings. The model weighs the patterns' families together with
word stems and word pairs ("your instructions", "secret password", "no restrictions") in five
languages, learned from thousands of examples, including benign questions that use the same
words innocently. It is a table of weights (screen_model.json): scoring a question is a few
hundred dictionary look-ups, no library.

Train it again after changing the sets, the patterns or `features`: `make screen-model`
(python -m concierge_cli.screen_model); tests/unit/test_screen.py fails when the weights are older
than the sets they were trained on.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

MODEL_PATH = Path(__file__).with_name("screen_model.json")
# The first letters of a word stand for it: "instructions", "instrucciones", "istruzioni" and
# "Instruktionen" share "instr"; "ignore", "ignorieren", "ignora" share "ignor". A cheap stemmer
# that works the same in every language.
STEM_CHARS = 5
_WORD = re.compile(r"[^\W_]+")
_URL = re.compile(r"https?://|www\.")
_QUOTE = re.compile(r"[\"'«»“”‘’]")  # noqa: RUF001 - typographic quotes on purpose


def features(plain: str, families: Mapping[str, float], kind: str) -> dict[str, float]:
    """The model's view of a text: `plain` is the normalised text (screen.normalise),
    `families` the strength each pattern family reached in it."""
    found: dict[str, float] = {f"family:{name}": strength for name, strength in families.items()}
    found[f"kind:{kind}"] = 1.0
    stems = [word[:STEM_CHARS] for word in _WORD.findall(plain)]
    for stem in stems:
        found[f"w:{stem}"] = 1.0
    for first, second in pairwise(stems):
        found[f"b:{first}_{second}"] = 1.0
    if _URL.search(plain):
        found["has:url"] = 1.0
    if _QUOTE.search(plain):
        found["has:quote"] = 1.0
    if "\n" in plain.strip():
        found["has:lines"] = 1.0
    # Long texts use more words: without this, length alone would look like evidence.
    found["length"] = min(len(stems), 400) / 100.0
    return found


@dataclass(frozen=True)
class Model:
    bias: float
    weights: dict[str, float]
    # The probability at or above which a text is flagged, per kind of text (chosen on
    # held-back folds): documents need more, because a knowledge base's own pages are full of
    # instructions for their readers, and a passage wrongly left out costs answers.
    thresholds: dict[str, float]
    # What it was trained on: the sets' digest, so a test can tell the weights are stale.
    trained_on: str

    def threshold(self, kind: str) -> float:
        return self.thresholds.get(kind, max(self.thresholds.values()))

    def probability(self, found: Mapping[str, float]) -> float:
        total = self.bias + sum(
            self.weights.get(name, 0.0) * value for name, value in found.items()
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, total))))


@cache
def load_model(path: Path = MODEL_PATH) -> Model | None:
    """The trained weights shipped with the package; None when there are none (the screen then
    decides from the patterns alone)."""
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return Model(
        bias=float(document["bias"]),
        weights={name: float(weight) for name, weight in document["weights"].items()},
        thresholds={kind: float(value) for kind, value in document["thresholds"].items()},
        trained_on=str(document["trained_on"]),
    )
