"""Attacks a stranger with the published public key (or a broken client) can make, against a real
server on loopback, counted: requests tried, 5xx answers, and unauthorized successes.

    .venv/bin/python bench/security_probe.py [--fuzz 1500] [--seed 1]

Starts daphne (the default embedded mode, greeting pipeline: no models needed) on a SQLite file
of its own, creates the demo agent and keys, and sends: origin variants and bad keys against the
public key, random and hostile /voice/start bodies (lone surrogates, NaN, deep nesting, odd
charsets, oversize), abusive messages on the call WebSocket (floods, malformed candidates, deep
JSON) and hostile dashboard requests (bogus charsets, huge Range headers). Prints one JSON
object. A request that starts a call without the right key, origin and agent is an
unauthorized success.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from thinnest_site.launch import LocalProduct

ORIGIN_VARIANTS = [
    "https://evil.example",
    "null",
    "",
    "{base}.evil.net",
    "{base}:1",
    "{base}/",
    "{base_upper}",
    "http://127.0.0.1.nip.io",
    "https://127.0.0.1",
    "{base}@evil.example",
    '=HYPERLINK("https://evil.example")',
    "x" * 5000,
]


class Tally:
    def __init__(self) -> None:
        self.tried = 0
        self.server_errors = 0
        self.unauthorized_successes = 0
        self.statuses: dict[str, int] = {}

    def add(self, status: int, *, may_succeed: bool) -> None:
        self.tried += 1
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if status >= 500:
            self.server_errors += 1
        if 200 <= status < 300 and not may_succeed:
            self.unauthorized_successes += 1


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def random_json(rng: random.Random, depth: int = 0) -> str:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(["null", "true", "false", "NaN", "Infinity", "-0", "1e999"])
    if kind == 1:
        return str(rng.randint(-(10**40), 10**40))
    if kind == 2:
        return json.dumps(
            "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(8)))
        )
    if kind == 3:
        return '"\\ud' + rng.choice("89ab") + "00" + '"'  # a lone surrogate
    if kind == 4:
        return '"' + "\\u0000" * rng.randrange(1, 3) + '"'
    if kind in (5, 6):
        items = [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
        return "[" + ",".join(items) + "]"
    keys = ["agent_id", "context", "x", "\\udfff"]
    items = [
        f'"{rng.choice(keys)}": {random_json(rng, depth + 1)}' for _ in range(rng.randrange(4))
    ]
    return "{" + ",".join(items) + "}"


def probe_start_call(product: LocalProduct, fuzz: int, rng: random.Random) -> dict:
    credentials = product.credentials
    port, base = product.port, product.base_url
    public, agent_id = credentials["public_key"], credentials["agent_id"]
    good_body = json.dumps({"agent_id": agent_id}).encode()
    tally = Tally()

    def start(body: bytes, key: str | None, origin: str | None, **extra) -> int:
        headers = {"Content-Type": extra.pop("content_type", "application/json")}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if origin:
            headers["Origin"] = origin
        return post(port, "/voice/start", body, headers)

    for variant in ORIGIN_VARIANTS:
        origin = variant.format(base=base, base_upper=base.upper())
        # The same origin spelled otherwise (upper case, a trailing slash) is the same origin.
        same = origin.lower().rstrip("/") == base
        tally.add(start(good_body, public, origin), may_succeed=same)
    for key in ["", "pk_", public[:11], public + "x", public.upper(), "sk_" + public[3:], "\u00e9"]:
        tally.add(start(good_body, key, base), may_succeed=False)
    for _ in range(fuzz):
        body = random_json(rng)
        if rng.random() < 0.5:
            body = f'{{"agent_id": "{agent_id}", "context": {random_json(rng)}}}'
        tally.add(
            start(body.encode("utf-8", "surrogatepass"), public, base),
            may_succeed=True,  # a well-formed body from the allowed origin may start a call
        )
    hostile = [
        ("[" * 50_000 + "]" * 50_000).encode(),
        json.dumps({"agent_id": agent_id, "pad": "x" * (3 << 20)}).encode(),
        b"\xff\xfe\x00",
    ]
    for body in hostile:
        tally.add(start(body, public, base), may_succeed=False)
    for charset in ["rot13", "utf-7", "bogus", "utf-32"]:
        status = start(good_body, public, base, content_type=f"application/json; charset={charset}")
        tally.add(status, may_succeed=True)  # the right key, origin and agent: only no 5xx
    return tally.__dict__


async def probe_websocket(product: LocalProduct) -> dict:
    import websockets

    credentials = product.credentials
    tally = Tally()
    hostile = [
        "[" * 20_000 + "]" * 20_000,
        json.dumps({"type": "ice-candidate", "candidate": {"candidate": "x" * 5000}}),
        json.dumps({"type": "ice-candidate", "candidate": {"sdpMLineIndex": 10**30}}),
        json.dumps({"type": "answer", "sdp": {"type": "answer", "sdp": ["x"]}}),
        json.dumps({"type": "auth", "token": "x" * 60_000}),
        json.dumps({"type": "\u0000"}),
        "\ud800",
    ]
    for message in hostile:
        started = await asyncio.to_thread(
            lambda: json.loads(
                _start_secret(product.port, credentials["secret_key"], credentials["agent_id"])
            )
        )
        try:
            async with websockets.connect(started["websocket_url"]) as ws:
                await ws.send(message.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                tally.add(400 if reply.get("type") == "error" else 200, may_succeed=True)
        except websockets.ConnectionClosed as closed:
            tally.add(500 if closed.rcvd and closed.rcvd.code == 1011 else 400, may_succeed=True)
    return tally.__dict__


def _start_secret(port: int, key: str, agent_id: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST",
        "/voice/start",
        body=json.dumps({"agent_id": agent_id}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    return connection.getresponse().read().decode()


def probe_pages(product: LocalProduct) -> dict:
    tally = Tally()
    for charset in ["rot13", "bogus", "utf-7"]:
        status = post(
            product.port,
            "/dashboard/login/",
            b"username=a&password=b",
            {"Content-Type": f"application/x-www-form-urlencoded; charset={charset}"},
        )
        tally.add(status, may_succeed=True)
    connection = http.client.HTTPConnection("127.0.0.1", product.port, timeout=30)
    connection.request("GET", "/dashboard/calls/", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    tally.add(connection.getresponse().status, may_succeed=False)
    return tally.__dict__


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fuzz", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = {
        "VOICE_PIPELINE": "greeting",
        "START_CALL_IP_RATE": "100000/min",
        "API_KEY_DEFAULT_RATE_PER_MINUTE": "100000",
        "MAX_CONCURRENT_CALLS_PER_IP": "0",
        "MAX_CONCURRENT_CALLS_PER_KEY": "0",
        "MAX_CONCURRENT_CALLS_PER_AGENT": "0",
    }
    with (
        tempfile.TemporaryDirectory() as directory,
        LocalProduct(Path(directory), env=env) as product,
    ):
        product.credentials = product.manage_json("bootstrap_demo", "--origin", product.base_url)
        started = time.monotonic()
        report = {
            "start_call": probe_start_call(product, args.fuzz, rng),
            "websocket": asyncio.run(probe_websocket(product)),
            "pages": probe_pages(product),
        }
        report["seconds"] = round(time.monotonic() - started, 1)
        report["tracebacks_in_server_logs"] = sum(
            log.read_text().count("Traceback") for log in product.log_dir.glob("*.log")
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
