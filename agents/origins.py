"""Web origins as API keys allow them: exact ``scheme://host[:port]`` or ``https://*.example.com``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from thinnest_site.errors import InvalidRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _is_valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):  # IPv6 literal
        return ":" in host
    return all(_HOST_LABEL.match(label) for label in host.split("."))


def normalize_origin(value: str) -> str:
    """Validate an allowed-origin entry and return its canonical form (lower case, no default port).

    Raises ``InvalidRequest`` with a message a person can act on.
    """
    raw = (value or "").strip()
    if raw in {"*", "null"} or raw.startswith("*"):
        raise InvalidRequest(
            f"'{raw}' is not allowed: name each origin, e.g. https://shop.example.com "
            "or https://*.example.com."
        )
    parts = urlsplit(raw.lower())
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidRequest(f"'{raw}' must start with http:// or https://.")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise InvalidRequest(f"'{raw}' must be an origin only: scheme://host[:port], no path.")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"'{raw}' has an invalid port.") from exc
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    wildcard = host.startswith("*.")
    bare_host = host[2:] if wildcard else host
    if not bare_host or "*" in bare_host or not _is_valid_host(bare_host):
        raise InvalidRequest(f"'{raw}' has an invalid host.")
    if wildcard and "." not in bare_host:
        raise InvalidRequest(
            f"'{raw}' is too broad: use a wildcard under a domain, like https://*.example.com."
        )
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def normalize_origins(values: Iterable[str]) -> list[str]:
    return sorted({normalize_origin(v) for v in values})


def origin_matches(origin: str, allowed: Iterable[str]) -> bool:
    """Whether a request's Origin header is on an allow-list of normalized entries.

    ``https://*.example.com`` matches any subdomain of example.com at any depth, not example.com.
    """
    try:
        request_origin = normalize_origin(origin)
    except InvalidRequest:
        return False
    if "*" in request_origin:
        return False
    scheme, rest = request_origin.split("://", 1)
    for entry in allowed:
        if entry == request_origin:
            return True
        entry_scheme, entry_rest = entry.split("://", 1)
        if entry_scheme != scheme or not entry_rest.startswith("*."):
            continue
        suffix = entry_rest[1:]  # ".example.com[:port]"
        if rest.endswith(suffix) and len(rest) > len(suffix) and ":" not in rest[: -len(suffix)]:
            return True
    return False


def origin_for_record(origin: str) -> str:
    """A request's Origin header as a call record keeps it: ``scheme://host[:port]``, or empty
    when it is not a web origin at all (``null``, a wildcard, a path, a formula, junk). Anything
    a stranger sends in that header ends up in the call history and its exports."""
    try:
        normalized = normalize_origin(origin[:300])
    except InvalidRequest:
        return ""
    return "" if "*" in normalized else normalized
