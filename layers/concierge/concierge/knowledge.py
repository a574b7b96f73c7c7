"""The knowledge base as data: the chunks ingestion writes and retrievers search."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

# Version 1 index files written before chunk ids and headings existed still load: the newer
# fields have defaults. A file of a newer format than this code reads is refused by name.
FORMAT_VERSION = 1


# A language is covered when it has at least this share of the main language's chunks: a
# question in a language with fewer is likely answered by a document in another one.
COVERED_SHARE = 0.25
# Where a category's description came from (ingestion, in this order of preference): the
# `_category_.json` of its folder, the knowledge base's `_categories_.json`, the
# `category_description` front matter of its documents, or its documents' titles.
DescriptionSource = Literal["category-file", "categories-file", "front-matter", "titles"]


class CategoryInfo(BaseModel):
    description: str
    source: DescriptionSource
    documents: int = Field(ge=0)


class Catalog(BaseModel):
    """What a knowledge base holds, for routing a question to it: its categories, described,
    and its languages with their chunk counts. The local index carries it; beside a Bedrock
    knowledge base it is the `categories.json` object `concierge ingest` writes."""

    categories: dict[str, CategoryInfo] = Field(default_factory=dict)
    languages: dict[str, int] = Field(default_factory=dict)

    @property
    def main_language(self) -> str | None:
        """The language with the most chunks (the alphabetically first of a tie)."""
        ranked = sorted(self.languages.items(), key=lambda item: (-item[1], item[0]))
        return ranked[0][0] if ranked else None

    def covers(self, language: str) -> bool:
        """Whether the knowledge base has enough chunks in `language` for a question in it to
        be searched in it alone."""
        main = self.main_language
        if main is None:
            return False
        return self.languages.get(language, 0) >= COVERED_SHARE * self.languages[main]

    def covered_languages(self) -> list[str]:
        return [language for language in sorted(self.languages) if self.covers(language)]


class Chunk(BaseModel):
    source: str
    title: str
    text: str
    category: str
    language: str
    # `<source>#<n>`, n counting from 1 in document order; "" in files written before ids.
    chunk_id: str = ""
    # The nearest `#`/`##` heading above the chunk, without the marks ("" when there is none).
    heading: str = ""


class ChunkVectors(BaseModel):
    """The chunks' dense vectors (`concierge.adapters.embeddings.static`), compactly."""

    # `<name>@<hash>` of the model that embedded the chunks: a query embedded by another model
    # is not compared with them.
    model: str
    dimensions: int
    # Base64 of len(chunks) x dimensions int8, one row per chunk in chunk order, each row scaled
    # so its largest component is +-127. Rows are normalised again when loaded: cosine needs no
    # stored scale.
    vectors: str


class IndexFile(BaseModel):
    format_version: int = FORMAT_VERSION
    kb_version: str
    # Every category of the chunks, described (ingestion); empty in files written before.
    categories: dict[str, CategoryInfo] = Field(default_factory=dict)
    chunks: list[Chunk]
    # None: written without the `dense` extra, or before vectors existed (search is lexical).
    embeddings: ChunkVectors | None = None

    @field_validator("format_version")
    @classmethod
    def _readable(cls, value: int) -> int:
        if value > FORMAT_VERSION:
            raise ValueError(
                f"index format {value} is newer than this code reads ({FORMAT_VERSION}): "
                "upgrade concierge or re-run `concierge ingest`"
            )
        return value

    def catalog(self) -> Catalog:
        languages: dict[str, int] = {}
        for chunk in self.chunks:
            languages[chunk.language] = languages.get(chunk.language, 0) + 1
        return Catalog(categories=self.categories, languages=languages)
