from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._output import emit
from agents.selectors import api_key_get_by_prefix_or_key
from agents.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its prefix (as listed) or the full key."

    def add_arguments(self, parser):
        parser.add_argument("prefix_or_key")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        api_key = api_key_get_by_prefix_or_key(options["prefix_or_key"])
        if api_key is None:
            raise CommandError(f"No API key matches '{options['prefix_or_key']}'.")
        api_key_revoke(api_key=api_key)
        emit(
            self,
            {"prefix": api_key.prefix, "revoked_at": api_key.revoked_at.isoformat()},
            as_json=options["json"],
        )
