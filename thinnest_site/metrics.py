"""The product's Prometheus metrics, defined once for every process (prometheus-client).

Counters and histograms are counted where things happen: response latency and late frames in
the media worker, refused calls where a call's end is recorded. With several processes on a
machine (the Procfile, systemd), set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory that all
of them share, emptied before they start: each process writes its figures there and the web
process's ``/metrics`` adds them up (prometheus-client's multiprocess mode). Without it (the
embedded mode, one process) they live in the process.

The gauges of calls and capacity come from the media workers' reports in the database
(sessions/workers.py) at each scrape, so they cover every worker, on any machine.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

CALLS_REFUSED = Counter(
    "thinnest_calls_refused",
    "Calls refused because no media worker could take them (reason: at_capacity).",
    ["reason"],
)
RESPONSE_LATENCY = Histogram(
    "thinnest_response_latency_seconds",
    "From the end of the caller's turn to the agent's first audio, one per answered turn.",
    buckets=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0),
)
LATE_AUDIO_FRAMES = Counter(
    "thinnest_late_audio_frames",
    "Agent audio frames sent later than their time (the media worker was behind), counted at "
    "each call's end.",
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class MediaWorkerCollector:
    """Calls held and places per media worker, as the workers last reported them."""

    def collect(self):
        from sessions.selectors import media_workers_live

        workers = media_workers_live()
        active = GaugeMetricFamily(
            "thinnest_calls_active",
            "Calls with media flowing, per media worker.",
            labels=["worker"],
        )
        capacity = GaugeMetricFamily(
            "thinnest_media_worker_capacity",
            "Calls a media worker may hold (0 while it drains), per media worker.",
            labels=["worker"],
        )
        free = GaugeMetricFamily(
            "thinnest_media_worker_free", "Calls a media worker can take now.", labels=["worker"]
        )
        for worker in workers:
            label = [f"{worker.host}:{worker.pid}"]
            active.add_metric(label, worker.calls)
            capacity.add_metric(label, 0 if worker.draining else worker.capacity)
            free.add_metric(label, worker.free)
        return [active, capacity, free]


def metrics_exposition() -> bytes:
    """The text a Prometheus scrape gets: this process's (or, in the multiprocess mode, every
    process's) counters and histograms, then the workers' gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    reported = CollectorRegistry()
    reported.register(MediaWorkerCollector())
    return generate_latest(counted) + generate_latest(reported)
