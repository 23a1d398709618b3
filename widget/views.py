from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseNotModified
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
EMBED_DIR = Path(settings.BASE_DIR) / "static" / "embed"
EMBED_BUNDLES = {"sdk.js": ["sdk.js"], "widget.js": ["sdk.js", "widget.js"]}
EMBED_VERSION = "1.0.0"


@lru_cache(maxsize=8)
def _embed_bundle(name: str, mtimes: tuple[float, ...]) -> tuple[bytes, str]:
    body = "\n".join((EMBED_DIR / part).read_text() for part in EMBED_BUNDLES[name]).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def embed_script(request, name: str, version: str = ""):
    """``/widget.js``, ``/sdk.js`` and their versioned aliases (``/v1/…``, ``/v1.0.0/…``).

    Any site may load them (CORS ``*``: they are public code and are fetched without
    credentials). The stable paths are cached briefly and revalidated by ETag, so a server
    upgrade reaches pages within minutes; the exact-version path never changes, so it is cached
    for a year."""
    if name not in EMBED_BUNDLES or version not in ("", "v1", f"v{EMBED_VERSION}"):
        raise Http404
    parts = EMBED_BUNDLES[name]
    body, etag = _embed_bundle(name, tuple((EMBED_DIR / p).stat().st_mtime for p in parts))
    if version == f"v{EMBED_VERSION}":
        cache_control = "public, max-age=31536000, immutable"
    else:
        cache_control = "public, max-age=300, stale-while-revalidate=86400"
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["Access-Control-Allow-Origin"] = "*"
    response["X-Content-Type-Options"] = "nosniff"
    return response
