from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from voice.engines.models import ModelUnavailable
from voice.pipeline.registry import pipeline_preload


class Command(BaseCommand):
    help = (
        "Prepare the voice models once, at set-up: join the packaged LLM from its parts, then "
        "load and run each default model, so that no caller waits for it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args, **options):
        started = time.monotonic()
        try:
            timings = pipeline_preload()
        except ModelUnavailable as exc:
            raise CommandError(str(exc)) from exc
        total = round(time.monotonic() - started, 1)
        if options["json"]:
            self.stdout.write(json.dumps({"seconds": total, "stages_ms": timings}))
            return
        stages = ", ".join(f"{stage} {ms} ms" for stage, ms in timings.items())
        self.stdout.write(f"voice models ready in {total} s ({stages or 'no models needed'})")
