from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from voice.worker import MediaWorker


class Command(BaseCommand):
    help = "Run a media worker: it takes calls from the channel layer and owns their WebRTC peers."

    def add_arguments(self, parser):
        parser.add_argument(
            "--capacity",
            type=int,
            default=None,
            help=f"Calls held at once (default MEDIA_WORKER_CAPACITY={settings.MEDIA_WORKER_CAPACITY}).",
        )

    def handle(self, *args, **options):
        asyncio.run(self._run(options["capacity"]))

    async def _run(self, capacity: int | None) -> None:
        worker = MediaWorker(capacity=capacity)
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await worker.start()
        self.stdout.write(f"media worker ready on {worker.channel} (capacity {worker.capacity})")
        await stopping.wait()
        # Calls in progress are told they end, so browsers hear why instead of a dead line.
        await worker.stop()
