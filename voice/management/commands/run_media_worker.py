from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from voice.shutdown import install_drain_handlers
from voice.worker import MediaWorker


class Command(BaseCommand):
    help = (
        "Run a media worker: it takes calls from the channel layer and owns their WebRTC peers. "
        "SIGTERM drains it (SHUTDOWN_GRACE_SECONDS); SIGINT or a second SIGTERM stops it now."
    )

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
        stopped = asyncio.Event()
        install_drain_handlers(
            asyncio.get_running_loop(), drain=worker.drain, stop=worker.stop, after_stop=stopped.set
        )
        await worker.start()
        self.stdout.write(f"media worker ready on {worker.channel} (capacity {worker.capacity})")
        await stopped.wait()
