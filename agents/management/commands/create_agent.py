from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._output import emit
from agents.services import agent_create


class Command(BaseCommand):
    help = "Create a voice agent and print its id."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--prompt", default="", help="System prompt.")
        parser.add_argument("--greeting", default="", help="First thing the agent says.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            agent = agent_create(
                name=options["name"], system_prompt=options["prompt"], greeting=options["greeting"]
            )
        except ValidationError as exc:
            raise CommandError(f"Invalid agent: {'; '.join(exc.messages)}") from exc
        emit(self, {"agent_id": agent.public_id, "name": agent.name}, as_json=options["json"])
