"""Start a Bedrock Knowledge Bases ingestion job, so the knowledge base re-reads its S3 source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KnowledgeBaseSync:
    knowledge_base_id: str
    data_source_id: str
    client: Any  # a bedrock-agent client

    def __str__(self) -> str:
        return f"knowledge base {self.knowledge_base_id} (data source {self.data_source_id})"

    def start(self, kb_version: str) -> str:
        """Start an ingestion job of the data source; its id."""
        response = self.client.start_ingestion_job(
            knowledgeBaseId=self.knowledge_base_id,
            dataSourceId=self.data_source_id,
            description=f"concierge ingest, knowledge-base version {kb_version}",
        )
        return str(response["ingestionJob"]["ingestionJobId"])
