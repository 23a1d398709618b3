"""Whether a media worker takes one more call: by the response latency its calls would then see.

A reply's latency on a CPU-bound machine grows with how busy the machine's cores are: model
work waits for cores other calls' model work holds. The worker predicts it as

    latency(with one more call) = base / (1 - (busy + per_call))

- ``base``: the response latency of a call on an idle machine. First from the worker's own
  speed, timed at start (one typical reply's model work, ``turn_ms_measure``, plus the end of
  turn and transport, ``FIXED_OVERHEAD_MS``); then from the latencies its calls see, each taken
  back to an idle machine by the same formula.
- ``busy``: the fraction of the machine's CPU in use now (/proc/stat, every core, every
  process: other media workers on the machine count too).
- ``per_call``: the fraction of the machine one call uses, learned from the worker's inference
  pool (model thread-seconds per second per call, over the cores); ``DEFAULT_PER_CALL`` until a
  call has run.

It takes a call while that prediction stays within ``RESPONSE_LATENCY_BUDGET_MS``, and always
takes a first call (a machine too slow for the budget still answers one caller at a time). The
formula is the M/M/1 queue's stretch of a service time at a load; its constants were checked
against bench/load.py on this machine (README, "Measured here"). Hand-written: no library
predicts latency from CPU load, and each piece is one line of arithmetic on measured figures.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# End-of-turn detection (~250 ms with Smart Turn) and transport to the caller (~150 ms): the
# part of a reply's latency that is not model work.
FIXED_OVERHEAD_MS = 400.0
# The fraction of a 2-core machine one call used here (bench/load.py), until measured.
DEFAULT_PER_CALL = 0.15
# Utilization beyond which the prediction is taken as unbounded.
MAX_UTILIZATION = 0.95
# Weight of a new observation in the running estimates.
SMOOTHING = 0.2


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class TimedPool(ThreadPoolExecutor):
    """A thread pool that adds up how long its jobs ran (thread-seconds): the inference work
    a worker's calls queue, whatever part of the pipeline queued it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._busy_lock = threading.Lock()
        self.busy_seconds = 0.0

    def submit(self, fn, /, *args, **kwargs):
        def timed():
            started = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._busy_lock:
                    self.busy_seconds += time.monotonic() - started

        return super().submit(timed)


class CpuMeter:
    """The machine's CPU busy fraction between two readings of /proc/stat (all cores)."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self.path = path
        self._last = self._read()

    def _read(self) -> tuple[float, float] | None:
        try:
            with open(self.path) as stat:
                fields = [float(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields), idle

    def busy(self) -> float | None:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        total, idle = now[0] - last[0], now[1] - last[1]
        return max(0.0, min(1.0, 1.0 - idle / total))


class Admission:
    """One worker's load estimates, and its decisions."""

    def __init__(self, *, budget_ms: float, base_ms: float, capacity: int) -> None:
        self.budget_ms = budget_ms
        self.base_ms = base_ms
        self.capacity = capacity
        self.per_call = DEFAULT_PER_CALL
        self.busy = 0.0

    # --- what the worker measures --------------------------------------------------------------

    def observe_load(self, *, busy: float | None, pool_seconds: float, seconds: float, calls: int):
        """Every few seconds: the machine's busy fraction and the pool's work since last time."""
        if busy is not None:  # smoothed: a burst of model work is not the machine's load
            self.busy += SMOOTHING * (busy - self.busy)
        if calls and seconds > 0:
            share = pool_seconds / seconds / calls / cores()
            self.per_call += SMOOTHING * (min(share, 1.0) - self.per_call)

    def observe_latency(self, latency_ms: float, *, busy: float | None = None) -> None:
        """A reply's measured latency, taken back to an idle machine to correct ``base``."""
        load = self.busy if busy is None else busy
        idle_equivalent = latency_ms * (1.0 - min(load, MAX_UTILIZATION))
        self.base_ms += SMOOTHING * (idle_equivalent - self.base_ms)

    # --- what it decides -----------------------------------------------------------------------

    def predicted_ms(self, extra_calls: int = 1) -> float:
        """The response latency with ``extra_calls`` more calls on the machine."""
        load = self.busy + extra_calls * self.per_call
        if load >= MAX_UTILIZATION:
            return float("inf")
        return self.base_ms / (1.0 - load)

    def free(self, calls: int) -> int:
        """How many more calls this worker would take now."""
        room = self.capacity - calls
        if room <= 0:
            return 0
        # Always one call: a caller is better served slowly than not at all.
        taken = 1 if calls == 0 else 0
        while taken < room and self.predicted_ms(taken + 1) <= self.budget_ms:
            taken += 1
        return taken

    def admits(self, calls: int) -> bool:
        return self.free(calls) > 0

    def as_dict(self) -> dict:
        return {
            "budget_ms": round(self.budget_ms),
            "base_ms": round(self.base_ms),
            "per_call": round(self.per_call, 3),
            "busy": round(self.busy, 3),
            # With one more call (None: the machine is past the utilization it can take).
            "predicted_ms": round(p) if (p := self.predicted_ms(1)) != float("inf") else None,
        }
