"""/api/docs/ loads nothing from outside this server: installs may be air-gapped, and a docs page
should not tell third parties who reads it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db

# An absolute or protocol-relative URL: anything that is not this server.
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
# The fetch directives a page's assets go through; none may name another host.
FETCH_DIRECTIVES = ("default-src", "script-src", "style-src", "img-src", "font-src", "connect-src")
LOCAL_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}


class _Assets(HTMLParser):
    """What a page loads: script and image sources, stylesheets and preconnects, inline CSS
    url()s and @imports, and its Content-Security-Policy meta tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.csp: str | None = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += re.findall(r"""url\(\s*['"]?([^'")\s]+)""", data)
            self.urls += re.findall(r"""@import\s+['"]([^'"]+)""", data)


def _csp_directives(policy: str) -> dict[str, list[str]]:
    directives = {}
    for part in policy.split(";"):
        if not part.strip():
            continue
        name, *sources = part.split()
        directives[name.lower()] = sources
    return directives


def _docs_page(client) -> tuple[str, _Assets, dict[str, list[str]]]:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = _Assets()
    assets.feed(html)
    policy = response.headers.get("Content-Security-Policy") or assets.csp or ""
    return html, assets, _csp_directives(policy)


def _sources(directives: dict[str, list[str]], name: str) -> set[str]:
    return set(directives.get(name, directives.get("default-src", ["*"])))


# Asset-like absolute URLs in a script (images, fonts, stylesheets), by the directive that
# governs fetching them.
ASSET_URL = re.compile(
    rb"""https?://[^\s"'`)]+?\.(svg|png|jpe?g|gif|webp|ico|woff2?|ttf|otf|css)\b"""
)
DIRECTIVE_FOR = {
    b"woff": "font-src",
    b"woff2": "font-src",
    b"ttf": "font-src",
    b"otf": "font-src",
    b"css": "style-src",
}


def test_the_api_docs_page_loads_no_asset_from_another_site(client):
    html, assets, _ = _docs_page(client)
    assert assets.urls, "the page loads Redoc from somewhere"
    assert [u for u in assets.urls if EXTERNAL.match(u)] == []
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html


def test_the_api_docs_page_lets_the_browser_load_nothing_from_elsewhere(client):
    # The Redoc bundle itself shows Redocly's logo from cdn.redoc.ly (no option turns it off),
    # and a newer bundle may add more: the page's policy makes the browser refuse all of it
    # before any request is sent.
    _, _, directives = _docs_page(client)
    assert "default-src" in directives, "no Content-Security-Policy with default-src"
    for name in FETCH_DIRECTIVES:
        assert _sources(directives, name) <= LOCAL_SOURCES, name


def test_what_the_docs_scripts_would_fetch_from_elsewhere_the_page_refuses(client):
    _, assets, directives = _docs_page(client)
    scripts = [u for u in assets.urls if u.endswith(".js")]
    assert scripts
    external = []
    for src in scripts:
        response = client.get(src)
        assert response.status_code == 200, src
        body = b"".join(response.streaming_content) if response.streaming else response.content
        for match in ASSET_URL.finditer(body):
            directive = DIRECTIVE_FOR.get(match.group(1), "img-src")
            external.append(match.group(0).decode())
            assert _sources(directives, directive) <= LOCAL_SOURCES, (match.group(0), directive)
    # The check above saw the asset it is there for.
    assert "https://cdn.redoc.ly/redoc/logo-mini.svg" in external
