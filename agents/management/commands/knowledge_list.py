from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.knowledge.selectors import knowledge_document_list
from agents.management.commands._output import emit
from agents.selectors import agent_get


class Command(BaseCommand):
    help = "List an agent's knowledge documents."

    def add_arguments(self, parser):
        parser.add_argument("agent_id", help="The agent's public id (agent_…).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        agent = agent_get(public_id=options["agent_id"])
        if agent is None:
            raise CommandError(f"No agent has the id '{options['agent_id']}'.")
        documents = [
            {
                "id": document.public_id,
                "title": document.title,
                "kind": document.kind,
                "status": document.status,
                "chunks": document.chunk_count,
                "source_name": document.source_name,
                "error": document.error,
            }
            for document in knowledge_document_list(agent_id=agent.pk)
        ]
        if options["json"]:
            emit(self, {"agent_id": agent.public_id, "documents": documents}, as_json=True)
            return
        if not documents:
            self.stdout.write(f"{agent.public_id} has no knowledge documents.")
        for d in documents:
            error = f"  ({d['error']})" if d["error"] else ""
            self.stdout.write(
                f"{d['id']}  {d['status']:<7}  {d['chunks']:>4} chunks  {d['kind']:<8}  "
                f"{d['title']}{error}"
            )
