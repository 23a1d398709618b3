"""How fast the dashboard's list pages are with 100,000 calls in PostgreSQL.

    .venv/bin/python bench/dashboard.py [--calls 100000] [--repeat 15]
        [--database-url postgres://postgres@127.0.0.1:5432/thinnest_bench_dashboard]

Fills its own database once (calls over 90 days, four transcript turns each, agents, end
reasons; about 1 % of calls mention "Saturday"), then requests each page through Django's test
client as a logged-in staff user (view, queries and template; no network) and prints p50/p95
milliseconds and the number of SQL queries per page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/thinnest_bench_dashboard"

WORDS = [
    "hello",
    "order",
    "bread",
    "cake",
    "delivery",
    "price",
    "opening",
    "hours",
    "table",
    "booking",
    "refund",
    "croissant",
    "gluten",
    "free",
    "coffee",
    "tomorrow",
    "morning",
    "evening",
    "weekend",
    "address",
    "parking",
    "invoice",
    "thanks",
]
REASONS = ["user_hangup"] * 6 + ["agent_hangup"] * 2 + ["silence_timeout", "connection_lost"]


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{name}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", admin_url, "-qc", f'CREATE DATABASE "{name}"'], check=True)


def sentence(rng: random.Random, saturday: bool) -> str:
    words = rng.sample(WORDS, 8)
    if saturday:
        words.insert(3, "Saturday")
    return " ".join(words).capitalize() + "."


def seed(total: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from agents.models import Agent
    from sessions.models import CallSession, TranscriptEntry

    have = CallSession.objects.count()
    if have >= total:
        print(f"database holds {have} calls; not seeding")
        return
    rng = random.Random(7)
    agents = list(Agent.objects.all()) or [
        Agent.objects.create(name=f"Agent {i}", greeting="Hello!") for i in range(5)
    ]
    now = timezone.now()
    started = time.perf_counter()
    batch = 5000
    for offset in range(have, total, batch):
        calls = []
        for i in range(offset, min(total, offset + batch)):
            created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
            ended = rng.random() < 0.9
            duration = round(rng.uniform(5, 400), 2) if ended else None
            calls.append(
                CallSession(
                    agent=rng.choice(agents),
                    status="ended" if ended else "failed",
                    end_reason=rng.choice(REASONS) if ended else "media_failed",
                    created_at=created,
                    started_at=created if ended else None,
                    ended_at=created + timedelta(seconds=duration or 1),
                    duration_seconds=duration if ended else 0.0,
                    origin="https://shop.example.com",
                    context={"user_name": f"Caller {i}", "page": "pricing"},
                    token_nonce="x",
                    stats={"turns": 4},
                )
            )
        CallSession.objects.bulk_create(calls)
        entries = []
        for call in calls:
            saturday = rng.random() < 0.01
            for seq in range(4):
                role = "agent" if seq % 2 == 0 else "user"
                entries.append(
                    TranscriptEntry(
                        call=call,
                        seq=seq,
                        role=role,
                        text=sentence(rng, saturday and seq == 1),
                        start_ms=seq * 4000,
                        end_ms=seq * 4000 + 3000,
                        latency_ms=rng.randint(300, 2500) if role == "agent" and seq else None,
                    )
                )
        TranscriptEntry.objects.bulk_create(entries)
        print(f"  {offset + len(calls)} calls", end="\r", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"seeded {total - have} calls in {time.perf_counter() - started:.0f} s")


def measure(client, url: str, repeat: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, body[:200])
        queries = len(captured)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()

    ensure_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "thinnest_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    seed(args.calls)

    from agents.models import Agent

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    agent = Agent.objects.order_by("id").first().public_id
    today = timezone.localdate()
    month_ago = (today - timedelta(days=30)).isoformat()
    pages = {
        "call list, page 1": "/dashboard/calls/",
        "call list, page 200": "/dashboard/calls/?page=200",
        "call list, one agent": f"/dashboard/calls/?agent={agent}",
        "call list, status + end reason": "/dashboard/calls/?status=ended&end_reason=agent_hangup",
        "call list, last 30 days": f"/dashboard/calls/?from={month_ago}",
        "call list, search 'saturday'": "/dashboard/calls/?q=saturday",
        "call list, search + agent": f"/dashboard/calls/?q=saturday&agent={agent}",
        "overview (7 days)": "/dashboard/",
        "analytics, 30 days": f"/dashboard/analytics/?from={month_ago}",
        "analytics, 90 days": f"/dashboard/analytics/?from={(today - timedelta(days=90)).isoformat()}",
        "analytics, 90 days, one agent": (
            f"/dashboard/analytics/?from={(today - timedelta(days=90)).isoformat()}&agent={agent}"
        ),
    }
    from sessions.models import CallSession

    print(f"\n{CallSession.objects.count()} calls, {args.repeat} requests per page\n")
    print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    for name, url in pages.items():
        client.get(url)  # warm
        times, queries = measure(client, url, args.repeat)
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(f"{name:40} {statistics.median(times):8.1f} {p95:8.1f} {queries:8d}")
    # The CSV export streams every matching call: one run, all 100k rows.
    times, _ = measure(client, "/dashboard/calls/export.csv", 1)
    print(f"{'CSV export, all calls (one run)':40} {times[0]:8.1f}")


if __name__ == "__main__":
    main()
