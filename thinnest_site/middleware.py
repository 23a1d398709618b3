from __future__ import annotations

from corsheaders.middleware import CorsMiddleware as _CorsMiddleware
from django.http import HttpResponseBadRequest, JsonResponse


class CorsMiddleware(_CorsMiddleware):
    # Our origin check (agents.signals) reads API keys through the ORM, which refuses to run in
    # an async context; as a sync-only middleware Django runs it in a thread under ASGI.
    async_capable = False
    sync_capable = True


# Paths whose clients read JSON errors ({"error": {"code", "message"}}, thinnest_site/errors.py).
JSON_ERROR_PATH_PREFIXES = ("/voice/", "/api/", "/demo/api/")


def _charset_usable(name: str) -> bool:
    # Django takes any name codecs.lookup() knows as the request's encoding, and then fails with
    # a 500 when it decodes with a codec that is not bytes-to-text (rot13, base64, zip) or that
    # refuses errors="replace" (idna, undefined). Decoding a probe the way Django does tells.
    try:
        b"a\xff".decode(name, "replace")
    except (LookupError, ValueError):
        return False
    return True


class UnusableCharsetMiddleware:
    """A 400 for a request whose Content-Type names a charset its body cannot be decoded with,
    before anything reads the body or the query string."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        charset = request.content_params.get("charset") if request.content_params else None
        if charset is None or _charset_usable(charset):
            return self.get_response(request)
        message = "The Content-Type charset is not a text encoding this server can decode."
        if request.path.startswith(JSON_ERROR_PATH_PREFIXES):
            return JsonResponse(
                {"error": {"code": "invalid_request", "message": message}}, status=400
            )
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
