"""Webhook plumbing with no database in it: the signature, the URL rule (public addresses
only) and one HTTP POST, to the address that was checked.

The signature follows the scheme Stripe made familiar, so receivers know it:

    Thinnest-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Signing the timestamp with the body lets a receiver refuse a captured request replayed later.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNATURE_HEADER = "Thinnest-Signature"
EVENT_HEADER = "Thinnest-Event"
DELIVERY_HEADER = "Thinnest-Delivery"
USER_AGENT = "thinnest-webhooks/1"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# Carrier-grade NAT (RFC 6598): as internal as 10/8. ``is_global`` already says so; the explicit
# check keeps the rule readable and safe from changes in ``ipaddress``'s tables.
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
# IPv6 forms that carry an IPv4 address a router may forward to: NAT64 (64:ff9b::/96). The
# IPv4-mapped (::ffff:0:0/96) and 6to4 (2002::/16) forms have accessors of their own.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# The short error classes of the delivery log. They never quote the receiver (no response
# body, no reason phrase), and a port that refuses and one that drops the connection attempt
# read the same, so the log cannot be used to map a network.
ERROR_ADDRESS = "address not allowed"
ERROR_DNS = "DNS lookup failed"
ERROR_CONNECT = "connection failed"
ERROR_TIMEOUT = "timeout"
ERROR_TLS = "TLS error"
ERROR_RESPONSE = "invalid response"
ERROR_URL = "URL not allowed"


class WebhookUrlError(ValueError):
    """The URL may not receive deliveries; the message says why, for the person who typed it."""

    # The delivery log's short class for the same refusal.
    log_text = ERROR_URL


class WebhookDnsError(WebhookUrlError):
    log_text = ERROR_DNS


class WebhookAddressError(WebhookUrlError):
    log_text = ERROR_ADDRESS


@dataclass(frozen=True)
class WebhookTarget:
    """Where one delivery goes: the URL's parts, and the addresses its host resolved to, each
    of them checked. The connection goes to these addresses, never to a second lookup."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc


def _address_forms(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    # The address itself and any IPv4 address it embeds: ::ffff:10.0.0.1 reaches 10.0.0.1.
    forms = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            forms.append(ip.ipv4_mapped)
        if ip.sixtofour:
            forms.append(ip.sixtofour)
        if ip in _NAT64:
            forms.append(ipaddress.IPv4Address(ip.packed[-4:]))
    return forms


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip in _SHARED_ADDRESS_SPACE
    )


def webhook_address_allowed(
    address: str, *, allowed_networks: Sequence[str] = (), loopback: bool = False
) -> bool:
    """True when a delivery may connect to ``address`` (an IP literal): a public address, one
    in ``allowed_networks`` (CIDRs), or with ``loopback`` an address of this machine."""
    ip = ipaddress.ip_address(address)
    forms = _address_forms(ip)
    networks = _networks(tuple(allowed_networks))
    if any(form in network for form in forms for network in networks):
        return True
    if loopback and all(form.is_loopback for form in forms):
        return True
    return all(_is_public(form) for form in forms)


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # socket.gaierror, or a name IDNA cannot encode
        raise WebhookDnsError(
            f"The host name {host} could not be found (DNS lookup failed). Check the URL."
        ) from exc
    return tuple(dict.fromkeys(info[4][0] for info in infos))


def webhook_target_resolve(
    url: str, *, allow_http_localhost: bool, allowed_networks: Sequence[str] | None = None
) -> WebhookTarget:
    """Check ``url`` against the rule and resolve its host; ``WebhookUrlError`` (or its
    ``WebhookDnsError``, ``WebhookAddressError``) says why deliveries may not go there.

    Payloads carry transcripts, so they travel over HTTPS, to public addresses: a staff user must
    not be able to make the server POST to its own network (cloud metadata at 169.254.169.254,
    databases on 10/8, admin ports on loopback). Every address the name resolves to must pass,
    since any of them could be the one connected to. Plain HTTP is allowed to this machine only,
    when the installation allows it (development and tests); an air-gapped installation can
    allow its receivers' network with WEBHOOK_ALLOWED_NETWORKS."""
    if allowed_networks is None:
        allowed_networks = settings.WEBHOOK_ALLOWED_NETWORKS
    parts = urlsplit(url.strip())
    if not parts.hostname:
        raise WebhookUrlError("Enter a full URL, like https://example.com/hooks/thinnest.")
    if parts.username or parts.password:
        raise WebhookUrlError("The URL may not contain a user name or password.")
    try:
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError("The URL's port is not a valid port number.") from exc
    host = parts.hostname
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        if not allow_http_localhost:
            raise WebhookUrlError(
                "Plain http:// is only allowed to 127.0.0.1/localhost when the server sets "
                "WEBHOOK_ALLOW_HTTP_LOCALHOST (on by default with DEBUG). Use https://."
            )
        local = True
    elif parts.scheme == "https":
        local = False
    else:
        raise WebhookUrlError(
            "The URL must start with https:// (call data is only sent encrypted)."
        )
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses or not all(
        webhook_address_allowed(
            a, allowed_networks=() if local else allowed_networks, loopback=local
        )
        for a in addresses
    ):
        raise WebhookAddressError(
            f"{host} is not a public address (it is, or resolves to, a loopback, private, "
            "link-local or otherwise internal address): webhooks are only sent to public "
            "addresses. An operator can allow an internal network with WEBHOOK_ALLOWED_NETWORKS."
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme=parts.scheme, host=host, port=port, path=path, addresses=addresses)


def webhook_url_check(
    url: str, *, allow_http_localhost: bool, allowed_networks: Sequence[str] | None = None
) -> str:
    """The URL if deliveries may go there, else ``WebhookUrlError`` saying why (see
    ``webhook_target_resolve``; ``allowed_networks`` defaults to WEBHOOK_ALLOWED_NETWORKS)."""
    webhook_target_resolve(
        url, allow_http_localhost=allow_http_localhost, allowed_networks=allowed_networks
    )
    return url.strip()


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
    error: str  # one of the short classes above, or "HTTP <code> <standard phrase>"


class _ConnectError(Exception):
    """The TCP connection could not be made (refused, unreachable, or no answer in time)."""


def _tcp_connect(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    # Like socket.create_connection, but over the checked addresses only.
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise _ConnectError() from error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """http.client, connected to an address resolved and checked beforehand instead of looking
    the host up again (which could answer differently: DNS rebinding). The Host header is still
    the URL's host. http.client rather than a client library: no library we would trust with
    this offers pinning without reaching into its transport, and one POST needs no more."""

    def __init__(self, target: WebhookTarget, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self) -> None:
        self.sock = _tcp_connect(self.target.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same over TLS: the socket goes to the pinned address, while SNI and the certificate
    check are for the host name in the URL, as if it had been looked up."""

    def __init__(self, target: WebhookTarget, *, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self.target = target
        self.tls_context = context

    def connect(self) -> None:
        sock = _tcp_connect(self.target.addresses, self.port, self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.target.host)
        except BaseException:
            sock.close()
            raise


def _status_text(code: int) -> str:
    # The standard phrase, not the receiver's: the log quotes nothing the receiver wrote.
    try:
        text = f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        text = f"HTTP {code}"
    return text + (" (redirects are not followed)" if 300 <= code < 400 else "")


def webhook_post(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_http_localhost: bool,
    allowed_networks: Sequence[str] | None = None,
) -> PostResult:
    """POST once; any 2xx is a success, and a redirect is not followed (it could lead to plain
    HTTP or an internal address). The URL is checked again first: a name's address can change
    after it was saved, and the rule may have changed too."""
    try:
        target = webhook_target_resolve(
            url, allow_http_localhost=allow_http_localhost, allowed_networks=allowed_networks
        )
    except WebhookUrlError as exc:
        return PostResult(ok=False, status_code=None, error=exc.log_text)
    if target.scheme == "https":
        # A fresh context each time: it reads the system's CA bundle (or SSL_CERT_FILE) now.
        connection = _PinnedHTTPSConnection(
            target, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = _PinnedHTTPConnection(target, timeout=timeout)
    try:
        try:
            connection.connect()
        except _ConnectError:
            return PostResult(ok=False, status_code=None, error=ERROR_CONNECT)
        except (ssl.SSLError, ssl.CertificateError):
            return PostResult(ok=False, status_code=None, error=ERROR_TLS)
        connection.request("POST", target.path, body=body, headers=headers)
        # Only the status line is read: the body is the receiver's business.
        status = connection.getresponse().status
    except TimeoutError:  # socket.timeout is TimeoutError
        return PostResult(ok=False, status_code=None, error=ERROR_TIMEOUT)
    except ssl.SSLError:
        return PostResult(ok=False, status_code=None, error=ERROR_TLS)
    except http.client.HTTPException:  # no status line, the connection closed mid-answer
        return PostResult(ok=False, status_code=None, error=ERROR_RESPONSE)
    except OSError:  # reset, broken pipe
        return PostResult(ok=False, status_code=None, error=ERROR_CONNECT)
    except ValueError:  # http.client refuses a path with control characters
        return PostResult(ok=False, status_code=None, error=ERROR_URL)
    finally:
        connection.close()
    ok = 200 <= status < 300
    return PostResult(ok=ok, status_code=status, error="" if ok else _status_text(status))
