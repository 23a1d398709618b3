from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.knowledge.selectors import knowledge_document_get
from agents.knowledge.services import knowledge_document_remove
from agents.management.commands._output import emit


class Command(BaseCommand):
    help = "Remove knowledge documents (and their chunks), given their ids (doc_…)."

    def add_arguments(self, parser):
        parser.add_argument("document_ids", nargs="+", metavar="DOCUMENT_ID")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        ids = list(dict.fromkeys(options["document_ids"]))
        documents = [knowledge_document_get(public_id=public_id) for public_id in ids]
        unknown = [public_id for public_id, d in zip(ids, documents, strict=True) if d is None]
        if unknown:
            # Checked first: a typo in one id removes none of the others.
            raise CommandError(f"No knowledge document has the id {', '.join(unknown)}.")
        with transaction.atomic():
            for document in documents:
                knowledge_document_remove(document=document)
        emit(self, {"removed": ids}, as_json=options["json"])
