"""Webhooks per agent: signed call events sent to a real HTTP receiver on this machine, retried
with backoff, delivered once; and the dashboard pages that manage them."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery.signals import task_postrun
from django.utils import timezone

from agents import tasks
from agents.models import WebhookDelivery, WebhookEndpoint, new_webhook_event_id
from agents.services import (
    webhook_deliveries_resume,
    webhook_delivery_send,
    webhook_endpoint_create,
    webhook_test_send,
)
from agents.webhooks import webhook_post, webhook_signature_header, webhook_signature_verify
from sessions.services import (
    call_session_end,
    call_session_start,
    call_transcript_store,
    call_turn_record,
)
from sessions.summaries import call_summary_write
from tests.factories import AgentFactory, make_webhook
from tests.sessions.test_transcript_tasks import (
    TURNS,
    active_call,
    celery_worker,  # noqa: F401  (a fixture)
    wait_until,
)
from thinnest_site.background import background_cancel_pending, background_wait_idle
from thinnest_site.errors import InvalidRequest

pytestmark = pytest.mark.django_db

# A public address (example.com's at the time of writing) for the names tests use: the test
# machine may have no DNS, and no test connects to it.
PUBLIC_IP = "93.184.215.14"


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 3.0
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.fixture(autouse=True)
def _background_drained():
    # Sends run on the background runner's threads: none may outlive its test and reach the
    # next test's rows (SQLite reuses ids after a flush).
    yield
    background_cancel_pending()
    assert background_wait_idle(timeout=30)


class FakeDns:
    """The only thing faked in these tests: answers for chosen names, the real resolver for the
    rest (IP literals, localhost). ``answers[name]`` is a list of addresses, or a list of such
    lists consumed one lookup at a time (a name whose answer changes: DNS rebinding)."""

    def __init__(self, real) -> None:
        self.real = real
        self.answers: dict[str, list] = {"example.com": [PUBLIC_IP]}
        self.lookups: list[str] = []

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        answer = self.answers.get(name)
        if answer is None and name and name.endswith(".example.com"):
            answer = self.answers["example.com"]
        if answer is None:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        if answer and isinstance(answer[0], list):
            answer = answer.pop(0)
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answer
        ]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


class Receiver:
    """An HTTP server on 127.0.0.1 that records each request and answers with the next status
    of ``statuses`` (200 once they run out)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.server_names: list[str | None] = []  # the SNI of each TLS handshake
        # What a failing answer says: an internal service's error page, say.
        self.error_reason = "Internal Server Error"
        self.error_body = b"no"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                answer = receiver.error_body if status >= 300 else b"ok"
                self.send_response(status, receiver.error_reason if status >= 500 else None)
                if status in (301, 302):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self) -> list[str]:
        return [r["headers"]["Thinnest-Event"] for r in self.requests]

    def json(self, index: int) -> dict:
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def assert_signed(request: dict, secret: str) -> None:
    header = request["headers"]["Thinnest-Signature"]
    assert webhook_signature_verify(secret, header, request["body"]), header


# --- the signature ----------------------------------------------------------------------------


def test_a_signature_made_with_the_secret_verifies():
    body = b'{"type":"call.started"}'
    header = webhook_signature_header("whsec_abc", body)
    assert header.startswith("t=") and ",v1=" in header
    assert webhook_signature_verify("whsec_abc", header, body)


def test_a_tampered_body_or_another_secret_does_not_verify():
    header = webhook_signature_header("whsec_abc", b'{"amount":1}')
    assert not webhook_signature_verify("whsec_abc", header, b'{"amount":2}')
    assert not webhook_signature_verify("whsec_other", header, b'{"amount":1}')


def test_an_old_or_future_timestamp_does_not_verify():
    body = b"{}"
    old = webhook_signature_header("whsec_abc", body, timestamp=int(time.time()) - 301)
    assert not webhook_signature_verify("whsec_abc", old, body)
    assert webhook_signature_verify("whsec_abc", old, body, tolerance=600)
    future = webhook_signature_header("whsec_abc", body, timestamp=int(time.time()) + 301)
    assert not webhook_signature_verify("whsec_abc", future, body)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=123", "t=abc,v1=def", "garbage"])
def test_a_malformed_signature_header_does_not_verify(header):
    assert not webhook_signature_verify("whsec_abc", header, b"{}")


# --- endpoints --------------------------------------------------------------------------------


def test_a_new_endpoint_gets_a_secret_and_both_events(agent):
    endpoint = make_webhook(agent=agent, url="https://example.com/hooks")
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 30
    assert endpoint.events == ["call.started", "call.ended"]
    assert list(agent.webhooks.all()) == [endpoint]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "ftp://example.com/hooks",
        "https://user:pw@example.com/hooks",
        "example.com",
    ],
)
def test_a_url_that_is_not_https_is_refused(agent, url):
    with pytest.raises(InvalidRequest):
        webhook_endpoint_create(agent=agent, url=url)
    assert not WebhookEndpoint.objects.exists()


def test_http_to_this_machine_needs_the_setting(agent, settings):
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = False
    with pytest.raises(InvalidRequest, match="WEBHOOK_ALLOW_HTTP_LOCALHOST"):
        webhook_endpoint_create(agent=agent, url="http://127.0.0.1:9000/hooks")
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = True
    assert webhook_endpoint_create(agent=agent, url="http://localhost:9000/hooks").pk


def test_unknown_events_are_refused(agent):
    with pytest.raises(InvalidRequest):
        webhook_endpoint_create(agent=agent, url="https://example.com", events=["call.exploded"])
    with pytest.raises(InvalidRequest):
        webhook_endpoint_create(agent=agent, url="https://example.com", events=[])


# --- call events to a real receiver -----------------------------------------------------------


# Committed for real (transaction=True): the sends run on the background runner's threads, which
# see only what is committed.
@pytest.mark.django_db(transaction=True)
def test_the_receiver_gets_call_started_and_call_ended_signed_with_the_transcript(
    agent, secret_key, receiver
):
    endpoint = make_webhook(agent=agent, url=receiver.url)
    make_webhook(agent=AgentFactory(), url=receiver.url)  # another agent's: hears nothing

    session = active_call(agent, secret_key[0])
    assert background_wait_idle(timeout=10)
    assert receiver.events() == ["call.started"]

    for turn in TURNS:
        call_turn_record(session_id=session.public_id, turn=turn)
    call_session_end(session_id=session.public_id, reason="user_hangup")
    assert background_wait_idle(timeout=10)
    assert receiver.events() == ["call.started", "call.ended"]

    started, ended = receiver.requests
    for request in receiver.requests:
        assert_signed(request, endpoint.secret)
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["User-Agent"].startswith("thinnest-webhooks/")
    deliveries = {d.event: d for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    assert started["headers"]["Thinnest-Delivery"] == deliveries["call.started"].event_id
    assert ended["headers"]["Thinnest-Delivery"] == deliveries["call.ended"].event_id

    body = receiver.json(1)
    assert body["id"] == deliveries["call.ended"].event_id and body["type"] == "call.ended"
    data = body["data"]
    assert data["session_id"] == session.public_id and data["agent_id"] == agent.public_id
    assert data["status"] == "ended" and data["end_reason"] == "user_hangup"
    assert data["started_at"] and data["ended_at"] and data["duration_seconds"] is not None
    assert data["stats"]["turns"] == 5 and data["stats"]["latency_ms"]["p50"] == 500
    assert data["transcript"] == [
        {
            "role": t["role"],
            "text": t["text"],
            "start_ms": t["start_ms"],
            "end_ms": t["end_ms"],
            "latency_ms": t.get("latency_ms"),
        }
        for t in TURNS
    ]
    assert receiver.json(0)["data"]["status"] == "active"
    assert all(d.status == "succeeded" and d.attempts == 1 for d in deliveries.values())


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_gets_only_the_events_it_asked_for(agent, secret_key, receiver):
    make_webhook(agent=agent, url=receiver.url, events=["call.ended"])
    session = active_call(agent, secret_key[0])
    call_session_end(session_id=session.public_id, reason="user_hangup")
    assert background_wait_idle(timeout=10)
    assert receiver.events() == ["call.ended"]


def test_a_call_that_never_connected_sends_no_call_ended(
    agent, secret_key, receiver, django_capture_on_commit_callbacks
):
    make_webhook(agent=agent, url=receiver.url)
    session = call_session_start(agent=agent, api_key=secret_key[0]).session
    with django_capture_on_commit_callbacks(execute=True):
        call_session_end(session_id=session.public_id, reason="error")
    assert background_wait_idle(timeout=10)
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()


def test_call_ended_is_delivered_once_however_often_the_transcript_is_stored(
    agent, secret_key, receiver
):
    endpoint = make_webhook(agent=agent, url=receiver.url, events=["call.ended"])
    session = active_call(agent, secret_key[0])

    def store() -> None:
        # What the queued tasks do: store the transcript, then summarize (which emits call.ended).
        call_transcript_store(session_id=session.public_id)
        call_summary_write(session_id=session.public_id)

    for turn in TURNS[:3]:
        call_turn_record(session_id=session.public_id, turn=turn)
    call_session_end(session_id=session.public_id, reason="user_hangup")
    store()
    # The media worker's closing turns arrive, and the transcript is stored again before the
    # delivery's first attempt: the delivery carries them.
    for turn in TURNS[3:]:
        call_turn_record(session_id=session.public_id, turn=turn)
    store()

    delivery = WebhookDelivery.objects.get()
    assert delivery.session_id == session.public_id and delivery.endpoint == endpoint
    assert len(delivery.payload["data"]["transcript"]) == 5

    assert webhook_delivery_send(delivery_id=delivery.pk).delivered
    store()
    assert webhook_delivery_send(delivery_id=delivery.pk).retry_in is None
    assert WebhookDelivery.objects.count() == 1 and len(receiver.requests) == 1
    assert receiver.json(0)["data"]["stats"]["turns"] == 5


def test_running_the_send_task_twice_sends_once(agent, receiver):
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    tasks.webhook_delivery_send.delay(delivery.pk)
    tasks.webhook_delivery_send.delay(delivery.pk)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1 and receiver.events() == ["webhook.test"]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)


def test_a_delivery_another_attempt_holds_is_not_sent_in_parallel(agent, receiver):
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() + timedelta(seconds=30)
    )
    assert webhook_delivery_send(delivery_id=delivery.pk).retry_in is None
    assert receiver.requests == []
    # A lease left by a worker that died mid-attempt runs out, and the delivery goes out.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert webhook_delivery_send(delivery_id=delivery.pk).delivered


# --- failures and retries ---------------------------------------------------------------------


def test_a_failed_attempt_is_logged_and_the_retry_succeeds(agent, receiver, settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 15
    receiver.statuses = [500]
    endpoint = make_webhook(agent=agent, url=receiver.url)
    delivery = webhook_test_send(endpoint=endpoint)

    first = webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert not first.delivered and first.retry_in == 15
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error.startswith("HTTP 500") and delivery.next_attempt_at is not None
    assert delivery.locked_until is None

    second = webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert second.delivered
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        "succeeded",
        2,
        200,
    )
    assert delivery.delivered_at is not None and delivery.last_error == ""
    # The retry is the same delivery: same id, same bytes, freshly signed.
    first_request, second_request = receiver.requests
    assert first_request["body"] == second_request["body"]
    assert first_request["headers"]["Thinnest-Delivery"] == delivery.event_id
    assert second_request["headers"]["Thinnest-Delivery"] == delivery.event_id
    assert_signed(second_request, endpoint.secret)


def test_the_backoff_doubles_up_to_its_cap(settings):
    from agents.services import webhook_retry_delay

    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 10
    settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = 60
    assert [webhook_retry_delay(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_delivery_fails_for_good_after_the_last_attempt(agent, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500, 503, 502, 200]
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    outcomes = [webhook_delivery_send(delivery_id=delivery.pk) for _ in range(4)]
    delivery.refresh_from_db()
    assert [o.retry_in is not None for o in outcomes] == [True, True, False, False]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 502)
    assert len(receiver.requests) == 3


def test_a_redirect_is_a_failed_attempt_not_followed(agent, receiver):
    receiver.statuses = [302]
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    assert not webhook_delivery_send(delivery_id=delivery.pk).delivered
    delivery.refresh_from_db()
    assert delivery.last_status_code == 302 and len(receiver.requests) == 1


def test_an_unreachable_receiver_is_logged(agent, receiver):
    endpoint = make_webhook(agent=agent, url=receiver.url)
    receiver.server.shutdown()
    receiver.server.server_close()
    delivery = webhook_test_send(endpoint=endpoint)
    assert webhook_delivery_send(delivery_id=delivery.pk).retry_in is not None
    delivery.refresh_from_db()
    assert delivery.last_status_code is None and "connect" in delivery.last_error.lower()


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_never_answers_does_not_hold_up_the_call(
    agent, secret_key, silent_server, settings
):
    # Tasks are eager (no broker), as in the default installation: the send used to run inside
    # call_session_activate, i.e. in the call consumer's database call, for the whole timeout.
    settings.WEBHOOK_TIMEOUT_SECONDS = 3.0
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    make_webhook(agent=agent, url=f"http://127.0.0.1:{silent_server.port}/hooks")

    began = time.monotonic()
    session = active_call(agent, secret_key[0])
    assert time.monotonic() - began < 1.0
    wait_until(lambda: len(silent_server.accepted) == 1)  # the send is under way, elsewhere

    began = time.monotonic()
    call_session_end(session_id=session.public_id, reason="user_hangup")
    assert time.monotonic() - began < 1.0

    assert background_wait_idle(timeout=15)
    deliveries = WebhookDelivery.objects.order_by("pk")
    assert [(d.event, d.status, d.last_error) for d in deliveries] == [
        ("call.started", "failed", "timeout"),
        ("call.ended", "failed", "timeout"),
    ]


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_failed_attempt_is_retried_until_it_succeeds(agent, receiver, settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0.3
    receiver.statuses = [500, 503]
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    assert background_wait_idle(timeout=15)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    first, second, third = (r["at"] for r in receiver.requests)
    # The backoff is waited out: 0.3 s, then 0.6 s.
    assert second - first >= 0.3 and third - second >= 0.6


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_delivery_fails_after_the_last_attempt(agent, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 5
    delivery = webhook_test_send(endpoint=make_webhook(agent=agent, url=receiver.url))
    assert background_wait_idle(timeout=15)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.requests) == 3


# --- only public addresses (SSRF) -----------------------------------------------------------

INTERNAL_URLS = [
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://10.0.0.1/hooks",
    "https://172.16.5.4/hooks",
    "https://192.168.1.1/hooks",
    "https://127.0.0.1:1/hooks",
    "https://[::1]/hooks",
    "https://localhost/hooks",  # a name for 127.0.0.1
    "https://2130706433/hooks",  # 127.0.0.1 as one number
    "https://0.0.0.0/hooks",
    "https://100.64.0.1/hooks",  # carrier-grade NAT
    "https://224.0.0.1/hooks",  # multicast
    "https://240.0.0.1/hooks",  # reserved
    "https://[::ffff:10.0.0.1]/hooks",  # IPv4-mapped
    "https://[::ffff:127.0.0.1]/hooks",
    "https://[2002:a00:1::]/hooks",  # 6to4 of 10.0.0.1
    "https://[fe80::1]/hooks",
    "https://[fc00::1]/hooks",
    "https://[ff02::1]/hooks",
    "https://metadata.example.com/hooks",  # resolves to 169.254.169.254 (fake DNS)
    "https://mixed.example.com/hooks",  # one public and one private address
]


@pytest.fixture
def internal_names(dns) -> None:
    dns.answers["metadata.example.com"] = ["169.254.169.254"]
    dns.answers["mixed.example.com"] = [PUBLIC_IP, "10.0.0.7"]


@pytest.mark.usefixtures("internal_names")
@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_address_is_refused_when_saved(agent, url):
    with pytest.raises(InvalidRequest, match="not a public address") as exc:
        webhook_endpoint_create(agent=agent, url=url)
    assert exc.value.code == "invalid_url"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.usefixtures("internal_names")
@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_address_is_refused_when_sending(agent, url):
    # Saved before this rule existed, or through a path that skipped it.
    endpoint = WebhookEndpoint.objects.create(agent=agent, url=url, events=["call.ended"])
    delivery = webhook_test_send(endpoint=endpoint)
    assert webhook_delivery_send(delivery_id=delivery.pk).retry_in is not None
    delivery.refresh_from_db()
    assert (delivery.last_status_code, delivery.last_error) == (None, "address not allowed")


def test_a_loopback_port_is_never_connected_to_over_https(agent, silent_server):
    for url in (
        f"https://127.0.0.1:{silent_server.port}/hooks",
        f"https://localhost:{silent_server.port}/hooks",
    ):
        with pytest.raises(InvalidRequest):
            webhook_endpoint_create(agent=agent, url=url)
        endpoint = WebhookEndpoint.objects.create(agent=agent, url=url)
        webhook_delivery_send(delivery_id=webhook_test_send(endpoint=endpoint).pk)
    assert silent_server.accepted == []
    assert set(WebhookDelivery.objects.values_list("last_error", flat=True)) == {
        "address not allowed"
    }


def test_a_name_whose_address_turned_internal_after_saving_is_refused(agent, dns, silent_server):
    dns.answers["hooks.example.com"] = [PUBLIC_IP]
    endpoint = make_webhook(agent=agent, url=f"https://hooks.example.com:{silent_server.port}/h")
    dns.answers["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding
    webhook_delivery_send(delivery_id=webhook_test_send(endpoint=endpoint).pk)
    assert WebhookDelivery.objects.get().last_error == "address not allowed"
    assert silent_server.accepted == []


def test_a_name_that_does_not_resolve_is_refused_with_a_clear_message(agent, dns):
    dns.answers["nowhere.example.com"] = []
    with pytest.raises(InvalidRequest, match="could not be found"):
        webhook_endpoint_create(agent=agent, url="https://nowhere.example.com/hooks")


def test_an_operator_can_allow_an_internal_network(agent, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert make_webhook(agent=agent, url="https://10.20.3.4/hooks").pk
    with pytest.raises(InvalidRequest):
        webhook_endpoint_create(agent=agent, url="https://10.21.0.1/hooks")


def test_plain_http_to_this_machine_is_still_allowed_only_to_loopback(agent, dns):
    dns.answers["localhost"] = ["10.0.0.1"]  # a tampered hosts file
    with pytest.raises(InvalidRequest, match="not a public address"):
        webhook_endpoint_create(agent=agent, url="http://localhost:9000/hooks")


def test_a_refused_and_a_silently_dropped_connection_read_the_same():
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    # A listener whose accept queue is full: the kernel drops further SYNs, as a firewall that
    # filters a port does, and the connection attempt times out.
    full = socket.create_server(("127.0.0.1", 0), backlog=0)
    waiting = []
    try:
        for _ in range(8):
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(full.getsockname())
            except TimeoutError:
                client.close()
                break
            waiting.append(client)
        else:
            pytest.skip("this kernel accepts past the backlog; no filtered port to compare")
        results = [
            webhook_post(
                url=f"http://127.0.0.1:{port}/hooks",
                body=b"{}",
                headers={},
                timeout=1.0,
                allow_http_localhost=True,
            )
            for port in (closed_port, full.getsockname()[1])
        ]
    finally:
        for client in waiting:
            client.close()
        full.close()
    assert [(r.status_code, r.error) for r in results] == [(None, "connection failed")] * 2


def tls_files(directory: Path, name: str) -> tuple[Path, Path]:
    """A CA certificate, and a certificate and key for the server ``name`` that it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = timezone.now()

    def build(subject: str, key, issuer: str, issuer_key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        build("thinnest test CA", ca_key, "thinnest test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        build(name, key, "thinnest test CA", ca_key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, server_file = directory / "ca.pem", directory / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_file.write_bytes(
        server.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, server_file


@pytest.fixture
def tls_receiver_for(tmp_path, monkeypatch, settings) -> Iterator:
    """Starts an HTTPS receiver on 127.0.0.1 with a certificate for a given name, from a CA
    this process trusts."""
    started: list[Receiver] = []

    def start(cert_name: str) -> Receiver:
        ca_file, server_file = tls_files(tmp_path, cert_name)
        # The trust store is configuration, read by ssl.create_default_context at each send.
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server_file)
        settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the receiver is on loopback
        receiver = Receiver(tls=context)
        receiver.thread.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.server.shutdown()
        receiver.server.server_close()


def test_the_connection_goes_to_the_checked_address_with_the_name_for_tls(
    agent, dns, tls_receiver_for
):
    tls_receiver = tls_receiver_for("hooks.example.test")
    # Two lookups answer 127.0.0.1 (on saving, and the check before sending); any later lookup
    # fails, so a connection that looked the name up again could not get through.
    dns.answers["hooks.example.test"] = [["127.0.0.1"], ["127.0.0.1"]]
    url = f"https://hooks.example.test:{tls_receiver.port}/hooks?agent=1"
    endpoint = make_webhook(agent=agent, url=url)
    assert webhook_delivery_send(delivery_id=webhook_test_send(endpoint=endpoint).pk).delivered
    assert dns.lookups == ["hooks.example.test"] * 2
    assert tls_receiver.server_names == ["hooks.example.test"]
    (request,) = tls_receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{tls_receiver.port}"
    assert_signed(request, endpoint.secret)


def test_a_certificate_for_another_name_is_a_tls_error(agent, dns, tls_receiver_for):
    tls_receiver = tls_receiver_for("other.example.test")
    dns.answers["hooks.example.test"] = ["127.0.0.1"]
    endpoint = make_webhook(agent=agent, url=f"https://hooks.example.test:{tls_receiver.port}/")
    assert not webhook_delivery_send(delivery_id=webhook_test_send(endpoint=endpoint).pk).delivered
    assert WebhookDelivery.objects.get().last_error == "TLS error"
    assert tls_receiver.requests == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_real_worker_retries_a_500_and_then_never_sends_again(agent, receiver):
    receiver.statuses = [500]
    endpoint = make_webhook(agent=agent, url=receiver.url)
    finished: list[str] = []

    def count(sender=None, task_id=None, **kwargs):
        finished.append(task_id)

    task_postrun.connect(count, weak=False)
    try:
        # Not in a transaction here: the send is queued to Redis at once.
        delivery = webhook_test_send(endpoint=endpoint)
        wait_until(
            lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded", timeout=20
        )
        again = tasks.webhook_delivery_send.delay(delivery.pk)
        wait_until(lambda: again.id in finished)
    finally:
        task_postrun.disconnect(count)

    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status_code) == (2, 200)
    assert [r["headers"]["Thinnest-Delivery"] for r in receiver.requests] == [delivery.event_id] * 2
    assert_signed(receiver.requests[1], endpoint.secret)


# --- lost sends and sending again -------------------------------------------------------------


def overdue(delivery: WebhookDelivery, seconds: float = 600) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def lost_send(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A delivery as ``webhook_test_send`` records it, whose queued send never ran."""
    event_id = new_webhook_event_id()
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=WebhookDelivery.TEST_EVENT,
        event_id=event_id,
        payload={"id": event_id, "type": WebhookDelivery.TEST_EVENT, "data": {}},
    )


@pytest.mark.django_db(transaction=True)
def test_a_delivery_whose_send_was_lost_is_queued_again_and_sent_once(agent, receiver):
    delivery = lost_send(make_webhook(agent=agent, url=receiver.url))
    assert webhook_deliveries_resume() == 0  # just created: its send may still be on its way
    overdue(delivery)

    assert webhook_deliveries_resume() == 1
    assert background_wait_idle(timeout=10)
    delivery.refresh_from_db()
    assert receiver.events() == ["webhook.test"] and delivery.status == "succeeded"
    assert webhook_deliveries_resume() == 0
    assert background_wait_idle(timeout=10)
    assert len(receiver.requests) == 1


def test_the_sweeper_leaves_alone_what_is_on_its_way(agent, receiver):
    endpoint = make_webhook(agent=agent, url=receiver.url)
    now = timezone.now()
    held, waiting, failed = (webhook_test_send(endpoint=endpoint) for _ in range(3))
    for delivery in (held, waiting, failed):
        overdue(delivery)
    # An attempt in flight, a retry whose backoff has not run out, a delivery that gave up.
    WebhookDelivery.objects.filter(pk=held.pk).update(locked_until=now + timedelta(seconds=30))
    WebhookDelivery.objects.filter(pk=waiting.pk).update(
        attempts=2, next_attempt_at=now + timedelta(seconds=30)
    )
    WebhookDelivery.objects.filter(pk=failed.pk).update(status="failed", attempts=8)
    assert webhook_deliveries_resume() == 0

    # The retry's send is lost too: once it is overdue, it is queued again, and only once
    # while that send is on its way.
    WebhookDelivery.objects.filter(pk=waiting.pk).update(
        next_attempt_at=now - timedelta(seconds=600)
    )
    assert webhook_deliveries_resume() == 1
    assert webhook_deliveries_resume() == 0
    assert receiver.requests == []  # nothing committed: the sends were only queued


def test_the_sweeper_runs_from_celery_beat():
    from django.conf import settings

    from thinnest_site.celery import app

    entry = next(
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "agents.tasks.webhook_deliveries_resume"
    )
    assert entry["schedule"] <= settings.WEBHOOK_RESUME_AFTER_SECONDS
    assert entry["task"] in app.tasks
