"""The prompt library: one TOML file per prompt in the `prompts/` folder next to this module
(layers/concierge/concierge/prompts/, shipped in the layer), versioned.

Templates use `$name` placeholders (string.Template) so JSON examples need no escaping.

What users and documents wrote goes into a prompt fenced: inside tags the system prompt names
as data (<documents>, <document>, <history>, <question>), with those tags defused inside the
text itself (`fenced`), so a question or a passage cannot close its fence and speak as the
prompt.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from string import Template

from pydantic import BaseModel, ConfigDict, Field

PROMPTS_DIR = Path(__file__).parent / "prompts"
# The tags that fence data in the prompts.
_FENCE_TAG = re.compile(r"<(\s*/?\s*)(documents?|question|history)\b", re.IGNORECASE)


class Prompt(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    version: str
    system: str
    template: str
    repair: str = ""
    max_tokens: int = Field(gt=0)
    temperature: float = Field(ge=0, le=1)
    top_p: float = Field(gt=0, le=1)
    categories: dict[str, str] = Field(default_factory=dict)
    no_answer: dict[str, str] = Field(default_factory=dict)
    refused: dict[str, str] = Field(default_factory=dict)

    def render_system(self, **values: str) -> str:
        return Template(self.system).safe_substitute(values)

    def render(self, **values: str) -> str:
        return Template(self.template).safe_substitute(values)

    def render_repair(self, prompt: str, problem: str) -> str:
        return Template(self.repair).safe_substitute(prompt=prompt, problem=problem)


def fenced(text: str) -> str:
    """`text` safe to put between fence tags: a fence tag inside it loses its opening bracket
    ('</documents>' becomes '\u2039/documents>'), which a reader still understands and a model
    cannot take for the end of the data."""
    return _FENCE_TAG.sub(lambda match: "\u2039" + match.group(1) + match.group(2), text)


def in_language(messages: dict[str, str], language: str) -> str:
    """A message of the prompt library in `language`, English when it has none."""
    return messages.get(language) or messages["en"]


@cache
def load_prompt(name: str) -> Prompt:
    with (PROMPTS_DIR / f"{name}.toml").open("rb") as handle:
        return Prompt(name=name, **tomllib.load(handle))


def prompt_versions() -> str:
    """All prompt versions in one string; a prompt change must never serve a cached answer."""
    return ",".join(load_prompt(name).version for name in ("classify", "condense", "answer"))
