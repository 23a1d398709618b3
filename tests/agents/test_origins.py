from __future__ import annotations

import pytest

from agents.origins import normalize_origin, origin_matches
from thinnest_site.errors import InvalidRequest


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Shop.Example.com", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://localhost:80", "http://localhost"),
        ("https://*.example.com", "https://*.example.com"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_it_normalizes_valid_origins(raw, expected):
    assert normalize_origin(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "*",
        "*.example.com",
        "https://*",
        "https://*.com",
        "https://a.*.example.com",
        "ftp://example.com",
        "example.com",
        "https://example.com/path",
        "https://example.com?x=1",
        "https://user@example.com",
        "https://exa mple.com",
        "https://example.com:99999",
        "null",
        "",
    ],
)
def test_it_refuses_invalid_or_too_broad_origins(raw):
    with pytest.raises(InvalidRequest):
        normalize_origin(raw)


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        ("https://shop.example.com", ["https://shop.example.com"], True),
        ("https://SHOP.example.com:443", ["https://shop.example.com"], True),
        ("http://shop.example.com", ["https://shop.example.com"], False),
        ("https://shop.example.com:8443", ["https://shop.example.com"], False),
        ("https://evil.com", ["https://shop.example.com"], False),
        ("https://a.example.com", ["https://*.example.com"], True),
        ("https://a.b.example.com", ["https://*.example.com"], True),
        ("https://example.com", ["https://*.example.com"], False),
        ("https://evilexample.com", ["https://*.example.com"], False),
        ("https://example.com.evil.com", ["https://*.example.com"], False),
        ("http://a.example.com", ["https://*.example.com"], False),
        ("https://a.example.com:8443", ["https://*.example.com:8443"], True),
        ("https://a.example.com", ["https://*.example.com:8443"], False),
        ("null", ["https://shop.example.com"], False),
        ("", ["https://shop.example.com"], False),
        ("https://*.example.com", ["https://*.example.com"], False),
    ],
)
def test_origin_matching(origin, allowed, expected):
    assert origin_matches(origin, allowed) is expected
