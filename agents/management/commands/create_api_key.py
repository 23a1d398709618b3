from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from agents.management.commands._output import emit
from agents.models import Agent
from agents.services import api_key_create
from thinnest_site.errors import InvalidRequest


class Command(BaseCommand):
    help = "Create an API key and print it. The key is shown only this once."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["secret", "public"], required=True)
        parser.add_argument(
            "--agent",
            action="append",
            default=[],
            dest="agents",
            help="Agent id the key may start (repeatable).",
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="Web origin allowed to use a public key (repeatable).",
        )
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="Start-call requests per minute (default: server setting).",
        )
        parser.add_argument(
            "--max-concurrent-calls",
            type=int,
            default=None,
            help="Calls the key may have live at once (default: MAX_CONCURRENT_CALLS_PER_KEY).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        agents = list(Agent.objects.filter(public_id__in=options["agents"]))
        missing = set(options["agents"]) - {a.public_id for a in agents}
        if missing:
            raise CommandError(f"Unknown agent(s): {', '.join(sorted(missing))}")
        try:
            api_key, raw_key = api_key_create(
                kind=options["kind"],
                name=options["name"],
                agents=agents,
                allowed_origins=options["origins"],
                rate_limit_per_minute=options["rate_limit"],
                max_concurrent_calls=options["max_concurrent_calls"],
            )
        except InvalidRequest as exc:
            raise CommandError(exc.message) from exc
        emit(
            self,
            {"key": raw_key, "kind": api_key.kind, "prefix": api_key.prefix},
            as_json=options["json"],
        )
