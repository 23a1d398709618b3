"""An agent's knowledge base as a reply searches it: the passages for the caller's words, within
the token budget the agent's save reserved for them (voice/checks.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from agents.knowledge.retrieval import KnowledgeIndex, knowledge_index_get
from agents.selectors import agent_get
from voice.pipeline.prompt import Fact


class KnowledgeSource(Protocol):
    def search(self, text: str) -> list[Fact]:
        """The facts for ``text``, best first (blocking: run it off the event loop)."""


class AgentKnowledge:
    def __init__(self, index: KnowledgeIndex, count_tokens: Callable[[str], int]) -> None:
        self.index = index
        self.count_tokens = count_tokens

    def search(self, text: str) -> list[Fact]:
        passages = self.index.search(
            text,
            limit=settings.KNOWLEDGE_PASSAGES,
            budget_tokens=settings.KNOWLEDGE_BUDGET_TOKENS,
            count_tokens=self.count_tokens,
        )
        return [
            Fact(
                text=passage.focus or passage.text,
                document_id=passage.document_id,
                document_title=passage.document_title,
                chunk_id=passage.chunk_id,
            )
            for passage in passages
        ]


def knowledge_load(
    *, agent_public_id: str, count_tokens: Callable[[str], int]
) -> AgentKnowledge | None:
    """The agent's knowledge, or None when it has none (blocking: a query, and the index built
    once per process and knowledge revision)."""
    agent = agent_get(public_id=agent_public_id)
    if agent is None:
        return None
    index = knowledge_index_get(agent_id=agent.pk)
    return AgentKnowledge(index, count_tokens) if len(index) else None
