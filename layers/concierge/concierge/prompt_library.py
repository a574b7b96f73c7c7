"""The prompt library: every version of every prompt, and which version each environment serves.

    prompts/<name>/<version>.toml   one version of a prompt (system text, template, parameters);
                                    versions are never edited once served, only added
    prompts/labels.toml             per environment (dev, staging, prod), the version of each
                                    prompt it serves
    prompts/variants.toml           per environment, A/B variants (concierge.experiments)

Templates use `$name` placeholders (string.Template) so JSON examples need no escaping.

What users and documents wrote goes into a prompt fenced: inside tags the system prompt names
as data (<documents>, <document>, <history>, <question>), with those tags defused inside the
text itself (`fenced`), so a question or a passage cannot close its fence and speak as the
prompt.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from string import Template

from pydantic import BaseModel, ConfigDict, Field

PROMPTS_DIR = Path(__file__).parent / "prompts"
LABELS_FILE = PROMPTS_DIR / "labels.toml"
# The prompts of the chain, in the order their versions are listed in a cache scope.
CHAIN_PROMPTS = ("classify", "condense", "answer")
_VERSION_NUMBER = re.compile(r"-(\d+)$")
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


class UnknownPromptError(LookupError):
    """No such prompt, version or label."""


def fenced(text: str) -> str:
    """`text` safe to put between fence tags: a fence tag inside it loses its opening bracket
    ('</documents>' becomes '\u2039/documents>'), which a reader still understands and a model
    cannot take for the end of the data."""
    return _FENCE_TAG.sub(lambda match: "\u2039" + match.group(1) + match.group(2), text)


def in_language(messages: dict[str, str], language: str) -> str:
    """A message of the prompt library in `language`, English when it has none."""
    return messages.get(language) or messages["en"]


def versions_of(name: str) -> list[str]:
    """Every version of a prompt, oldest first."""
    folder = PROMPTS_DIR / name
    if not folder.is_dir():
        raise UnknownPromptError(f"no prompt {name!r} (prompts/: {', '.join(prompt_names())})")
    return sorted((path.stem for path in folder.glob("*.toml")), key=_version_order)


def prompt_names() -> list[str]:
    return sorted(path.name for path in PROMPTS_DIR.iterdir() if path.is_dir())


def _version_order(version: str) -> tuple[int, str]:
    match = _VERSION_NUMBER.search(version)
    return (int(match.group(1)) if match else 0, version)


@cache
def load_prompt(name: str, version: str | None = None) -> Prompt:
    """One version of a prompt; without `version`, its newest."""
    version = version or versions_of(name)[-1]
    path = PROMPTS_DIR / name / f"{version}.toml"
    if not path.is_file():
        known = ", ".join(versions_of(name))
        raise UnknownPromptError(f"no version {version!r} of prompt {name!r} (known: {known})")
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    if document.get("version") != version:
        raise UnknownPromptError(f"{path} says version {document.get('version')!r}")
    return Prompt(name=name, **document)


@cache
def labels() -> dict[str, dict[str, str]]:
    """Per environment, the version of each prompt it serves (prompts/labels.toml)."""
    with LABELS_FILE.open("rb") as handle:
        document = tomllib.load(handle)
    return {label: dict(versions) for label, versions in document.items()}


def labelled(label: str) -> dict[str, str]:
    """The versions `label` serves, every chain prompt named."""
    try:
        versions = labels()[label]
    except KeyError:
        raise UnknownPromptError(
            f"no prompt label {label!r} (prompts/labels.toml has {', '.join(labels())})"
        ) from None
    missing = [name for name in CHAIN_PROMPTS if name not in versions]
    if missing:
        raise UnknownPromptError(f"label {label!r} names no version of {', '.join(missing)}")
    return {name: versions[name] for name in CHAIN_PROMPTS}


def prompt_versions(versions: Mapping[str, str] | None = None) -> str:
    """The chain's prompt versions in one string, for a cache scope: a prompt change must never
    serve a cached answer. Without `versions`, the newest of each."""
    chosen = versions or {}
    return ",".join(load_prompt(name, chosen.get(name)).version for name in CHAIN_PROMPTS)
