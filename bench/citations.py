"""Citations of the answers: how often the answer cites the document that answers the question,
with the chain's retrieve and answer steps and the offline model, on the sample knowledge base
and on the Lodestar corpus (bench/corpora/lodestar) when it is there."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict

from bench.figures import goals, ratio, reproduce, table

TITLE = "Citations: the answers cite the document that answers"
RECALL_GOAL = 0.85  # citation recall on each corpus (issue #13)
LODESTAR = Path("bench") / "corpora" / "lodestar"
MISSES_SHOWN = 15
CROSS = (
    "cross-language"  # per corpus, of the questions whose expected document was given but not cited
)


class Question(BaseModel):
    """One line of a corpus's question file (knowledge/sample/qa.jsonl, the Lodestar
    questions/*.jsonl); fields the bench does not use are ignored."""

    model_config = ConfigDict(extra="ignore")

    question: str
    language: str
    expected_source: str | None = None
    kind: str = "direct"
    category: str | None = None
    # The question in the knowledge base's language, as classify or condense would give it.
    translation: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.expected_source) and self.kind != "unanswerable"


@dataclass(frozen=True)
class Outcome:
    question: Question
    given: list[str]  # the sources of the passages the answer step was given, in rank order
    cited: list[str]  # the sources the response cites, in its order
    answered: bool  # False: the no-answer message (or a refusal) instead of an answer

    @property
    def retrieved(self) -> bool:
        return self.question.expected_source in self.given

    @property
    def hit(self) -> bool:
        return self.question.expected_source in self.cited


@dataclass
class CorpusResult:
    name: str
    documents: int = 0
    chunks: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str = ""  # why the corpus was not measured

    def recall(self, cross_language: bool = True) -> float:
        counted = [o for o in self.outcomes if cross_language or o.question.kind != CROSS]
        return ratio(sum(o.hit for o in counted), len(counted))


@dataclass
class CitationsResult:
    top_k: int = 0
    search: str = ""  # how the retrieve step searched: fused with the dense model, or lexical
    corpora: list[CorpusResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the corpora and the chain's settings say what runs."""


def _questions(paths: list[Path]) -> list[Question]:
    questions = []
    for path in paths:
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    questions.append(Question.model_validate_json(line))
                except ValueError as error:
                    raise ValueError(f"{path}:{number}: {error}") from None
    return questions


def retrieved_and_answered(
    question: str,
    category: str,
    language: str,
    search_query: str | None,
    retriever: Any,
    route: Any,
    top_k: int,
) -> tuple[Any, Any]:
    """The chain's retrieve step, then its answer step on what it found, for one question
    classified as given (no deadline): the Retrieval and the AnswerOutput."""
    from concierge.models.state import AnswerInput, RetrieveInput
    from concierge.steps.answer import answer
    from concierge.steps.retrieve import retrieve

    found = retrieve(
        RetrieveInput(
            request_id="bench",
            question=question,
            category=category,
            language=language,
            deadline_ms=2**62,
            search_query=search_query,
        ),
        retriever,
        top_k,
    )
    replied = answer(
        AnswerInput(
            request_id="bench",
            question=question,
            language=language,
            passages=found.passages,
            deadline_ms=2**62,
            search_query=search_query,
        ),
        route,
    )
    return found, replied


def _measure(
    name: str, docs: Path, question_files: list[Path], top_k: int, embedder: Any
) -> CorpusResult:
    from concierge.adapters.llm.offline import OfflineModel
    from concierge.adapters.retrieval.local_index import LocalIndex
    from concierge.steps.calls import ModelRoute
    from concierge_cli.ingestion import build_index

    index = build_index([docs], embedder=embedder)
    categories = {chunk.source: chunk.category for chunk in index.chunks}
    questions = [q for q in _questions(question_files) if q.answerable]
    if missing := {str(q.expected_source) for q in questions} - categories.keys():
        raise ValueError(f"{name}: questions name documents it does not have: {sorted(missing)}")
    result = CorpusResult(name, len(categories), len(index.chunks))
    retriever = LocalIndex(index, embedder)
    route = ModelRoute(step="answer", models=[OfflineModel()])
    for q in questions:
        expected = str(q.expected_source)
        category = q.category or categories[expected]
        found, replied = retrieved_and_answered(
            q.question, category, q.language, q.translation, retriever, route, top_k
        )
        result.outcomes.append(
            Outcome(
                q,
                [p.source for p in found.passages],
                [c.source for c in replied.citations],
                # The no-answer message and a refusal cite nothing and say nothing was wrong
                # with citations; an answer without markers says `uncited`.
                answered=bool(replied.citations) or "uncited" in replied.problems,
            )
        )
    return result


def run(args: argparse.Namespace, root: Path, log: TextIO) -> CitationsResult:
    from concierge.adapters.embeddings.static import DenseUnavailableError, load_static_embedder
    from concierge.config import RetrieveSettings

    top_k = RetrieveSettings.model_fields["top_k"].default
    result = CitationsResult(top_k=top_k)
    embedder: Any = None
    try:
        # As the chain searches with the dense extra installed: BM25 and vectors fused.
        embedder = load_static_embedder()
        result.search = f"fused (BM25 and `{embedder.model}`)"
    except DenseUnavailableError as error:
        result.search = f"lexical only ({error})"
    print("  citations: the sample", file=log)
    sample = root / "knowledge" / "sample"
    result.corpora.append(_measure("sample", sample, [sample / "qa.jsonl"], top_k, embedder))
    lodestar = root / LODESTAR
    question_files = sorted((lodestar / "questions").glob("*.jsonl"))
    if not (lodestar / "docs").is_dir() or not question_files:
        result.corpora.append(
            CorpusResult(
                "lodestar", skipped=f"not measured: no documents or questions in {LODESTAR}"
            )
        )
        return result
    print("  citations: Lodestar", file=log)
    result.corpora.append(_measure("lodestar", lodestar / "docs", question_files, top_k, embedder))
    return result


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _row(label: str, outcomes: list[Outcome]) -> list[str]:
    n = len(outcomes)
    retrieved = [o for o in outcomes if o.retrieved]
    cited = sum(len(o.cited) for o in outcomes)
    from_expected = sum(o.question.expected_source in o.cited for o in outcomes)
    answered = [o for o in outcomes if o.answered]
    return [
        label,
        str(n),
        _share(ratio(sum(o.hit for o in outcomes), n)),
        _share(ratio(len(retrieved), n)),
        _share(ratio(sum(o.hit for o in retrieved), len(retrieved))),
        str(n - len(retrieved)),
        str(sum(not o.hit for o in retrieved)),
        _share(ratio(from_expected, cited)),
        _share(ratio(cited, len(answered))),
        _share(ratio(sum(len(set(o.given)) for o in outcomes), n)),
    ]


def _corpus(corpus: CorpusResult, top_k: int) -> str:
    if corpus.skipped:
        return f"### `{corpus.name}`\n\n{corpus.skipped}."
    groups: list[tuple[str, list[Outcome]]] = [
        ("all answerable", corpus.outcomes),
        # What an extractive model can answer at all: it cannot write in another language.
        ("all but cross-language", [o for o in corpus.outcomes if o.question.kind != CROSS]),
    ]
    for attribute in ("kind", "language"):
        values = sorted({getattr(o.question, attribute) for o in corpus.outcomes})
        groups += [
            (
                f"{attribute} `{value}`",
                [o for o in corpus.outcomes if getattr(o.question, attribute) == value],
            )
            for value in values
        ]
    # The ones the answer could have cited first; then those it cannot answer in their language.
    answer_misses = sorted(
        (o for o in corpus.outcomes if o.retrieved and not o.hit),
        key=lambda o: o.question.kind == CROSS,
    )
    misses = [
        [
            o.question.question,
            o.question.language,
            o.question.kind,
            f"`{o.question.expected_source}`",
            str(o.given.index(str(o.question.expected_source)) + 1),
            ", ".join(f"`{source}`" for source in o.cited)
            or ("no answer" if not o.answered else "-"),
        ]
        for o in answer_misses[:MISSES_SHOWN]
    ]
    shown = f"the first {MISSES_SHOWN} of " if len(answer_misses) > MISSES_SHOWN else ""
    return "\n".join(
        [
            f"### `{corpus.name}` ({corpus.documents} documents, {corpus.chunks} chunks, "
            f"{len(corpus.outcomes)} answerable questions, top {top_k} passages)",
            "",
            table(
                [
                    "questions",
                    "n",
                    "citation recall",
                    "expected given",
                    "cited when given",
                    "missed: retrieval",
                    "missed: answer",
                    "citation precision",
                    "cited per answer",
                    "documents given",
                ],
                [_row(label, outcomes) for label, outcomes in groups],
            ),
            "",
            f"Expected document given but not cited ({shown}{len(answer_misses)}; its rank among "
            "the passages, and what the answer cited):",
            "",
            table(["question", "lang", "kind", "expected", "rank", "cited"], misses, "llllrl")
            if misses
            else "none.",
        ]
    )


def render(result: CitationsResult) -> str:
    rows = [
        (
            f"citation recall, `{corpus.name}`",
            f"≥ {RECALL_GOAL:.2f}",
            "not measured"
            if corpus.skipped
            else f"{corpus.recall():.2f} (all but cross-language: {corpus.recall(False):.2f})",
            not corpus.skipped and corpus.recall() >= RECALL_GOAL,
        )
        for corpus in result.corpora
    ]
    return "\n\n".join(
        [
            reproduce(TITLE, "citations"),
            f"Search: {result.search}; answers: the `offline` model.",
            goals(*rows),
            *(_corpus(corpus, result.top_k) for corpus in result.corpora),
        ]
    )
