"""Whether a media worker takes one more call: by the response latency its calls would then see.

A reply's latency on a CPU-bound machine grows with how loaded its cores are: one call's model
work waits for the cores another's holds. The worker predicts it as

    latency(with k more calls) = base / (1 - (others + (calls + k) * per_call))

- ``base``: a reply's latency on an idle machine. First from the worker's own speed, timed as
  it starts (one typical reply's model work, ``turn_ms_measure``, plus the end of turn and the
  transport, ``FIXED_OVERHEAD_MS``); then from the latencies its calls see, each taken back to
  an idle machine by the same formula.
- ``per_call``: the share of the machine's CPU one of its calls uses: this process's CPU time
  (/proc/self/stat) per call held, over all cores; ``DEFAULT_PER_CALL`` until a call has run.
- ``others``: the machine's load from other processes (/proc/stat less this process's): other
  media workers on the machine, Celery writing a summary.

It takes a call while the prediction stays within ``RESPONSE_LATENCY_BUDGET_MS``, and always
takes a first call when no other worker on the machine holds one (a machine too slow for the
budget still answers one caller at a time). The
formula is an M/M/1 queue's stretch of a service time at a load; bench/load.py with every call
admitted measured p50 1.52, 1.86, 2.74, 3.51 s for 1-4 callers on 2 cores (AMD EPYC), which it
follows with a per-call share of ~0.17 (README, "Measured here"). Hand-written: no library
predicts latency from CPU load, and each piece is a line of arithmetic on measured figures.
"""

from __future__ import annotations

import os

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


class CpuMeter:
    """Between two readings: the fraction of the machine's CPU (all cores) in use, and the part
    of it this process used (/proc/stat, /proc/self/stat)."""

    def __init__(self, machine: str = "/proc/stat", process: str = "/proc/self/stat") -> None:
        self.machine_path, self.process_path = machine, process
        self._tick = os.sysconf("SC_CLK_TCK")
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        """(machine jiffies, of which idle, this process's jiffies)."""
        try:
            with open(self.machine_path) as stat:
                fields = [float(v) for v in stat.readline().split()[1:]]
            with open(self.process_path) as stat:
                # After the command's closing parenthesis: utime and stime are fields 14 and 15.
                own = stat.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields), idle, float(own[11]) + float(own[12])

    def read(self) -> tuple[float, float] | None:
        """(machine busy fraction, this process's fraction) since the last read."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        total = now[0] - last[0]
        machine = 1.0 - (now[1] - last[1]) / total
        own = (now[2] - last[2]) / total  # both in the same clock ticks, over all cores
        machine = max(0.0, min(1.0, machine))
        # Over a short interval the two files' counts can disagree by a tick.
        return machine, max(0.0, min(machine, own))


class Admission:
    """One worker's load estimates, and its decisions."""

    def __init__(self, *, budget_ms: float, base_ms: float, capacity: int) -> None:
        self.budget_ms = budget_ms
        self.base_ms = base_ms
        self.capacity = capacity
        self.per_call = DEFAULT_PER_CALL
        self.others = 0.0  # the machine's load from other processes (workers, Celery, ...)
        self.calls = 0
        self.calls_beside = 0  # calls other media workers on the machine hold

    # --- what the worker measures --------------------------------------------------------------

    def observe_load(self, *, machine: float, own: float, calls: int) -> None:
        """Every few seconds: the machine's CPU load and this process's part of it, and the calls
        it held meanwhile. Smoothed: a burst of model work is not a load."""
        self.calls = calls
        self.others += SMOOTHING * (max(0.0, machine - own) - self.others)
        if calls:
            self.per_call += SMOOTHING * (min(own / calls, 1.0) - self.per_call)

    def observe_latency(self, latency_ms: float) -> None:
        """A reply's measured latency, taken back to an idle machine to correct ``base``."""
        load = min(self.load(0), MAX_UTILIZATION)
        self.base_ms += SMOOTHING * (latency_ms * (1.0 - load) - self.base_ms)

    # --- what it decides -----------------------------------------------------------------------

    def load(self, extra_calls: int) -> float:
        return self.others + (self.calls + extra_calls) * self.per_call

    def predicted_ms(self, extra_calls: int = 1) -> float:
        """The response latency its calls would see with ``extra_calls`` more."""
        load = self.load(extra_calls)
        if load >= MAX_UTILIZATION:
            return float("inf")
        return self.base_ms / (1.0 - load)

    def free(self, calls: int) -> int:
        """How many more calls this worker would take now, holding ``calls``."""
        self.calls = calls
        room = self.capacity - calls
        if room <= 0:
            return 0
        # One call always, on a machine with no other: a caller is better served slowly than
        # not at all. (With another worker's calls beside it, the prediction decides.)
        taken = 1 if calls == 0 and self.calls_beside == 0 else 0
        while taken < room and self.predicted_ms(taken + 1) <= self.budget_ms:
            taken += 1
        return taken

    def admits(self, calls: int) -> bool:
        return self.free(calls) > 0

    def as_dict(self) -> dict:
        predicted = self.predicted_ms(1)
        return {
            "budget_ms": round(self.budget_ms),
            "base_ms": round(self.base_ms),
            "per_call": round(self.per_call, 3),
            "others": round(self.others, 3),
            "calls": self.calls,
            "calls_beside": self.calls_beside,
            # With one more call (None: more load than the machine can take).
            "predicted_ms": round(predicted) if predicted != float("inf") else None,
        }
