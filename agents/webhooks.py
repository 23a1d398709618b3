"""Webhook plumbing with no database in it: the signature, the URL rule and one HTTP POST.

The signature follows the scheme Stripe made familiar, so receivers know it:

    Thinnest-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Signing the timestamp with the body lets a receiver refuse a captured request replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Thinnest-Signature"
EVENT_HEADER = "Thinnest-Event"
DELIVERY_HEADER = "Thinnest-Delivery"
USER_AGENT = "thinnest-webhooks/1"
# Enough of a failing receiver's answer to show in the delivery log.
_ERROR_BODY_CHARS = 300
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class WebhookUrlError(ValueError):
    pass


def webhook_url_check(url: str, *, allow_http_localhost: bool) -> str:
    """The URL if deliveries may go there, else ``WebhookUrlError`` saying why.

    Payloads carry transcripts, so they only travel over HTTPS; plain HTTP is allowed to this
    machine only, when the installation allows it (development and tests)."""
    parts = urlsplit(url.strip())
    if not parts.hostname:
        raise WebhookUrlError("Enter a full URL, like https://example.com/hooks/thinnest.")
    if parts.username or parts.password:
        raise WebhookUrlError("The URL may not contain a user name or password.")
    if parts.scheme == "https":
        return url.strip()
    if parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        if allow_http_localhost:
            return url.strip()
        raise WebhookUrlError(
            "Plain http:// is only allowed to 127.0.0.1/localhost when the server sets "
            "WEBHOOK_ALLOW_HTTP_LOCALHOST (on by default with DEBUG). Use https://."
        )
    raise WebhookUrlError("The URL must start with https:// (call data is only sent encrypted).")


def webhook_body_encode(payload: dict) -> bytes:
    # Compact and key-ordered: every retry sends, and signs, the very same bytes.
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhook_signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def webhook_signature_verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` (a Thinnest-Signature value) signs ``body`` with ``secret`` and is
    at most ``tolerance`` seconds old. Pass the raw request body, before any JSON parsing.

    Receivers may copy this function: it needs only the standard library."""
    timestamp, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None
    error: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would follow a 301/302 with a GET and report the target's 200 as a delivery; a
    # redirect could also lead to plain HTTP or an internal address. A 3xx is a failed attempt.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST once; any 2xx is a success. Standard library only: one request needs no client
    library, and the product gains no dependency."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return PostResult(
                ok=200 <= response.status < 300, status_code=response.status, error=""
            )
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read(_ERROR_BODY_CHARS).decode("utf-8", "replace")
        except OSError:
            detail = ""
        error = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
        return PostResult(ok=False, status_code=exc.code, error=error)
    except urllib.error.URLError as exc:
        return PostResult(ok=False, status_code=None, error=f"Could not connect: {exc.reason}")
    except TimeoutError:
        return PostResult(ok=False, status_code=None, error=f"No answer within {timeout:g} s.")
    except (OSError, ValueError) as exc:  # connection reset, bad URL, TLS failures
        return PostResult(ok=False, status_code=None, error=f"{type(exc).__name__}: {exc}")
