"""A call's conversation figures: one typed shape for its writer (the transcript store) and every
reader (the call page, the CSV export, analytics, the ``call.ended`` webhook).

Stored in ``CallSession.stats`` as the webhook documentation shows it::

    {"turns": 5, "user_turns": 2, "agent_turns": 3,
     "latency_ms": {"p50": 500, "p95": 700, "mean": 600}}

(Readers used to look for ``stats["p50_latency_ms"]``, which was never written: no call page or
CSV showed response latency.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def _percentile(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class CallStats:
    turns: int = 0
    user_turns: int = 0
    agent_turns: int = 0
    p50_latency_ms: int | None = None
    p95_latency_ms: int | None = None
    mean_latency_ms: int | None = None

    @classmethod
    def from_turns(cls, turns: Iterable[tuple[str, int | None]]) -> CallStats:
        """From (role, latency_ms) of each stored turn."""
        rows = list(turns)
        latencies = [latency for role, latency in rows if role == "agent" and latency is not None]
        return cls(
            turns=len(rows),
            user_turns=sum(1 for role, _ in rows if role == "user"),
            agent_turns=sum(1 for role, _ in rows if role == "agent"),
            p50_latency_ms=_percentile(latencies, 0.5),
            p95_latency_ms=_percentile(latencies, 0.95),
            mean_latency_ms=round(sum(latencies) / len(latencies)) if latencies else None,
        )

    @classmethod
    def from_json(cls, data: Any) -> CallStats:
        """What ``CallSession.stats`` holds ({} before the transcript is stored)."""
        if not isinstance(data, dict):
            return cls()
        latency = data.get("latency_ms") if isinstance(data.get("latency_ms"), dict) else {}
        return cls(
            turns=int(data.get("turns") or 0),
            user_turns=int(data.get("user_turns") or 0),
            agent_turns=int(data.get("agent_turns") or 0),
            p50_latency_ms=latency.get("p50"),
            p95_latency_ms=latency.get("p95"),
            mean_latency_ms=latency.get("mean"),
        )

    def as_json(self) -> dict:
        return {
            "turns": self.turns,
            "user_turns": self.user_turns,
            "agent_turns": self.agent_turns,
            "latency_ms": {
                "p50": self.p50_latency_ms,
                "p95": self.p95_latency_ms,
                "mean": self.mean_latency_ms,
            },
        }
