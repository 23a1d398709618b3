from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from django.views.generic import TemplateView

from widget.demo import demo_available


class DemoPageView(TemplateView):
    template_name = "widget/demo.html"

    def get(self, request, *args, **kwargs):
        if not demo_available(request):
            raise Http404
        return super().get(request, *args, **kwargs)


# The embed scripts: what a customer's page loads with one <script> tag. widget.js carries the
# SDK too, so the seed's single tag is enough; sdk.js alone is for custom call UIs.
EMBED_DIR = Path(__file__).resolve().parent / "embed"
EMBED_BUNDLES = {"sdk.js": ["sdk.js"], "widget.js": ["sdk.js", "widget.js"]}
EMBED_VERSION = "1.0.0"


@dataclass(frozen=True)
class EmbedBundle:
    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str  # another representation, so another tag: caches must not swap the two


@lru_cache(maxsize=8)
def _embed_bundle(name: str, mtimes: tuple[float, ...]) -> EmbedBundle:
    # Compressed once per version of the files, not per request (Django's GZipMiddleware would
    # compress every response again, with random padding against BREACH that public code does
    # not need). mtime=0: the same files always give the same bytes.
    body = "\n".join((EMBED_DIR / part).read_text() for part in EMBED_BUNDLES[name]).encode()
    digest = hashlib.sha256(body).hexdigest()[:32]
    return EmbedBundle(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gzip"',
    )


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip: ``gzip;q=0`` refuses it, and a named
    coding counts before ``*``."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (piece.strip() for piece in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    weight = weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0)))
    return weight > 0


def embed_script(request, name: str, version: str = ""):
    """``/widget.js``, ``/sdk.js`` and their versioned aliases (``/v1/…``, ``/v1.0.0/…``).

    Any site may load them (CORS ``*``: they are public code and are fetched without
    credentials). The stable paths are cached briefly and revalidated by ETag, so a server
    upgrade reaches pages within minutes; the exact-version path never changes, so it is cached
    for a year. A client that accepts gzip gets the scripts gzipped (about a quarter of the size)."""
    if name not in EMBED_BUNDLES or version not in ("", "v1", f"v{EMBED_VERSION}"):
        raise Http404
    parts = EMBED_BUNDLES[name]
    bundle = _embed_bundle(name, tuple((EMBED_DIR / p).stat().st_mtime for p in parts))
    gzipped = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    etag = bundle.gzip_etag if gzipped else bundle.etag
    if version == f"v{EMBED_VERSION}":
        cache_control = "public, max-age=31536000, immutable"
    else:
        cache_control = "public, max-age=300, stale-while-revalidate=86400"
    # Weak comparison (RFC 9110 13.1.2): a proxy may have marked our tag weak.
    if_none_match = {
        t.removeprefix("W/") for t in parse_etags(request.headers.get("If-None-Match", ""))
    }
    if etag in if_none_match or "*" in if_none_match:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(
            bundle.gzipped if gzipped else bundle.body,
            content_type="application/javascript; charset=utf-8",
        )
        if gzipped:
            response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(response.content))
    response["ETag"] = etag
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = cache_control
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    return response
