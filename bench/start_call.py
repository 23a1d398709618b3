"""Throughput and latency of POST /voice/start, served by daphne, on PostgreSQL.

    .venv/bin/python bench/start_call.py [--seconds 10] [--concurrency 8] [--database-url URL]

Starts daphne on a free loopback port against its own database (created if missing), creates an
agent and a secret key with rate limits out of the way, then loads the endpoint from a separate
process (this one) with keep-alive connections, and prints requests/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from thinnest_site.launch import LocalProduct


def ensure_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", admin_url, "-c", f'CREATE DATABASE "{name}"'], check=True)


def worker(port: int, key: str, agent_id: str, stop_at: float, latencies: list, errors: list):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(
        {"agent_id": agent_id, "context": {"user_name": "Jane Doe", "page": "pricing"}}
    )
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        try:
            conn.request("POST", "/voice/start", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        if response.status == 201:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(response.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/thinnest_bench"
        ),
    )
    args = parser.parse_args()

    ensure_database(args.database_url)
    settings = {
        "DATABASE_URL": args.database_url,
        "START_CALL_IP_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    # No REDIS_URL: the local-memory cache, so this measures the endpoint, not a shared cache.
    with LocalProduct(Path(tempfile.mkdtemp(prefix="bench-start-call-")), env=settings) as product:
        agent_id = product.manage_json("create_agent", "--name", "Bench")["agent_id"]
        key = product.manage_json("create_api_key", "--kind", "secret", "--rate-limit", "100000")[
            "key"
        ]
        port = product.port
        # Warm up (imports, connection setup) before measuring.
        worker(port, key, agent_id, time.perf_counter() + 1, [], [])

        latencies: list[float] = []
        errors: list = []
        stop_at = time.perf_counter() + args.seconds
        threads = [
            threading.Thread(target=worker, args=(port, key, agent_id, stop_at, latencies, errors))
            for _ in range(args.concurrency)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    print(
        json.dumps(
            {
                "database": args.database_url.split("@")[-1],
                "seconds": args.seconds,
                "concurrency": args.concurrency,
                "requests_ok": len(latencies),
                "errors": len(errors),
                "requests_per_second": round(len(latencies) / args.seconds, 1),
                "latency_ms": {
                    "p50": round(q[49] * 1000, 1),
                    "p95": round(q[94] * 1000, 1),
                    "p99": round(q[98] * 1000, 1),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
