"""The eval cases: promptfoo-style YAML test files (eval/cases/*.yaml), one entry a case.

    - description: "en pricing: price of the Cirrus 2"
      vars:
        question: "How much does the Cirrus 2 tent cost?"
      metadata:
        id: en-pricing-001
        turns: []                  # earlier questions of the same session, asked first
        category: pricing          # or none
        language: en
        kind: answerable           # answerable | follow_up | unanswerable | adversarial
        gate: true                 # in the offline subset `make test` runs
        sources: [en-price-list.md]    # a correct answer cites one of them
        facts: ["299"]             # each must be in the answer (case-insensitive)
        refusal: none              # none | not_found | blocked

promptfoo reads the same files (eval/promptfooconfig.yaml). The earlier turns are metadata, not a
var: promptfoo makes one test of each value of a list var.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class CaseError(ValueError):
    """A case file that cannot be read as cases."""


class CaseVars(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)


class CaseMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z]{2}-[a-z0-9_-]+$")
    turns: list[str] = Field(default_factory=list)
    category: str
    language: str = Field(pattern=r"^[a-z]{2}$")
    kind: Literal["answerable", "follow_up", "unanswerable", "adversarial"]
    gate: bool = False
    sources: list[str] = Field(default_factory=list)
    facts: list[str] = Field(default_factory=list)
    refusal: Literal["none", "not_found", "blocked"] = "none"


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    vars: CaseVars
    metadata: CaseMetadata

    @property
    def id(self) -> str:
        return self.metadata.id


def load_cases(paths: Iterable[Path]) -> list[Case]:
    """Every case of the YAML files (or of the *.yaml files of the folders) in `paths`, in file
    and entry order; ids must be unique."""
    files = sorted(
        file for path in paths for file in ([path] if path.is_file() else path.glob("*.yaml"))
    )
    cases: list[Case] = []
    for file in files:
        entries = yaml.safe_load(file.read_text(encoding="utf-8")) or []
        if not isinstance(entries, list):
            raise CaseError(f"{file}: a YAML list of cases is expected")
        for number, entry in enumerate(entries, start=1):
            try:
                cases.append(Case.model_validate(entry))
            except ValidationError as error:
                raise CaseError(f"{file}, case {number}: {error}") from None
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise CaseError(f"case id {case.id!r} is used twice")
        seen.add(case.id)
    if not cases:
        raise CaseError(f"no cases in {', '.join(map(str, paths))}")
    return cases
