from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from voice.chat import ChatError, agent_chat_reply
from voice.engines.models import ModelUnavailable


class Command(BaseCommand):
    help = (
        "Ask an agent a question in text, through the same prompt, knowledge and model as a "
        "call's reply."
    )

    def add_arguments(self, parser):
        parser.add_argument("agent_id", help="The agent's public id (agent_…).")
        parser.add_argument("question")
        parser.add_argument(
            "--context",
            default="{}",
            help="JSON object filling the prompt's {{placeholders}}, as /voice/start's \"context\".",
        )
        parser.add_argument(
            "--history",
            default="[]",
            help='JSON list of the conversation so far: [{"role": "user"|"assistant", '
            '"content": "..."}, ...] (at most 20 turns).',
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        try:
            context = json.loads(options["context"])
            history = json.loads(options["history"])
        except ValueError as exc:
            raise CommandError(f"--context or --history is not valid JSON: {exc}") from exc
        if not isinstance(context, dict):
            raise CommandError("--context must be a JSON object.")
        try:
            answer = agent_chat_reply(
                agent_public_id=options["agent_id"],
                question=options["question"],
                history=history,
                context=context,
            )
        except (ChatError, ModelUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(answer.as_json()))
            return
        self.stdout.write(answer.reply)
        for source in answer.sources:
            self.stdout.write(f"  source: {source['title']} ({source['document_id']})")
        self.stdout.write(f"  {answer.latency_ms} ms")
