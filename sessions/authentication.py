"""How /voice/start knows who is calling and how often they may: API key auth, throttles, body limit."""

from __future__ import annotations

import json

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import BaseParser
from rest_framework.throttling import SimpleRateThrottle

from agents.models import ApiKey
from agents.selectors import api_key_get_by_raw_key
from thinnest_site.errors import ApplicationError


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer sk_…|pk_…``. Sets ``request.auth`` to the ``ApiKey``."""

    keyword = "Bearer"

    def authenticate(self, request) -> tuple[None, ApiKey]:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            raise exceptions.NotAuthenticated(
                "Missing API key: send 'Authorization: Bearer <your key>'."
            )
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <your key>'."
            )
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from exc
        api_key = api_key_get_by_raw_key(raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid.")
        if api_key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) for auth failures.
        return self.keyword


class StartCallIpThrottle(SimpleRateThrottle):
    """Every /voice/start attempt per client IP, valid key or not, so keys cannot be brute-forced."""

    scope = "start_call_ip"

    def get_rate(self) -> str:
        return settings.START_CALL_IP_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class StartCallKeyThrottle(SimpleRateThrottle):
    """Per API key, at the key's own rate (or the server default)."""

    scope = "start_call_key"

    def get_rate(self) -> str:
        return f"{settings.API_KEY_DEFAULT_RATE_PER_MINUTE}/min"

    def allow_request(self, request, view) -> bool:
        api_key: ApiKey = request.auth  # authenticates lazily: a bad key is a 401 here
        per_minute = api_key.rate_limit_per_minute or settings.API_KEY_DEFAULT_RATE_PER_MINUTE
        self.rate = f"{per_minute}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class BoundedJSONParser(BaseParser):
    """JSON with a size cap, read from the stream: no more than the cap is ever read. (Not a
    JSONParser subclass: DRF reads ``request.body`` whole for those, which refuses bodies over
    DATA_UPLOAD_MAX_MEMORY_SIZE with an exception of its own.)"""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.START_CALL_MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise ApplicationError(
                f"The request body is larger than {limit} bytes.",
                code="request_too_large",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = body.decode(encoding)
        except LookupError as exc:  # a charset Python knows only as a str codec, like rot13
            raise exceptions.UnsupportedMediaType(
                "", detail=f"Unsupported charset '{encoding}': send UTF-8 JSON."
            ) from exc
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"The body is not valid {encoding} text.") from exc
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise exceptions.ParseError("The body is nested too deeply.") from exc


def _refuse_constant(name: str):
    # NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them when the context is saved.
    raise ValueError(f"{name} is not a JSON value")


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the key auth in the OpenAPI schema."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret key (sk_…) from your backend, or a public key (pk_…) from an allowed origin.",
        }
