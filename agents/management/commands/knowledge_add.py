from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.knowledge.models import KnowledgeDocument
from agents.knowledge.parsing import document_kind_from_name
from agents.knowledge.selectors import knowledge_document_get_by_source
from agents.knowledge.services import (
    knowledge_document_add,
    knowledge_document_index,
    knowledge_document_update,
    knowledge_faq_add,
)
from agents.management.commands._output import emit
from agents.selectors import agent_get
from thinnest_site.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Add documents (.txt .md .markdown .html .htm .pdf) or one question and answer to an "
        "agent's knowledge, and index them now. A file whose name the agent already has "
        "replaces that document."
    )

    def add_arguments(self, parser):
        parser.add_argument("agent_id", help="The agent's public id (agent_…).")
        parser.add_argument("paths", nargs="*", metavar="PATH")
        parser.add_argument("--faq", nargs=2, metavar=("QUESTION", "ANSWER"))
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        agent = agent_get(public_id=options["agent_id"])
        if agent is None:
            raise CommandError(f"No agent has the id '{options['agent_id']}'.")
        if bool(options["paths"]) == bool(options["faq"]):
            raise CommandError("Give file paths or --faq QUESTION ANSWER (one of the two).")
        try:
            # All or nothing: one unreadable file adds none of the others.
            with transaction.atomic():
                if options["faq"]:
                    question, answer = options["faq"]
                    added = [
                        knowledge_faq_add(
                            agent=agent, question=question, answer=answer, queue_index=False
                        )
                    ]
                else:
                    added = [self._file_add(agent, Path(path)) for path in options["paths"]]
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        documents = [knowledge_document_index(document_id=document.pk) for document in added]
        failed = [d for d in documents if d and d.status == KnowledgeDocument.Status.FAILED]
        if failed:
            raise CommandError("; ".join(f"{d.source_name or d.title}: {d.error}" for d in failed))
        data = {
            "documents": len(documents),
            "chunks": sum(d.chunk_count for d in documents if d),
            "document_ids": [d.public_id for d in documents if d],
        }
        if options["json"]:
            emit(self, data, as_json=True)
        else:
            self.stdout.write(
                f"Indexed {data['documents']} document(s), {data['chunks']} chunk(s), "
                f"for {agent.public_id}: {' '.join(data['document_ids'])}"
            )

    def _file_add(self, agent, path: Path) -> KnowledgeDocument:
        kind = document_kind_from_name(path.name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}") from exc
        existing = knowledge_document_get_by_source(agent_id=agent.pk, source_name=path.name)
        if existing is not None and existing.kind == kind:
            return knowledge_document_update(document=existing, data=data, queue_index=False)
        return knowledge_document_add(
            agent=agent, kind=kind, data=data, source_name=path.name, queue_index=False
        )
