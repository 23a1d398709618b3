"""Domain errors and the one place that turns any API error into ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """An error a client caused and can act on. Services raise these; the API maps them to HTTP,
    the WebSocket consumer to an ``error`` event."""

    code = "invalid_request"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class InvalidRequest(ApplicationError):
    code = "invalid_request"
    status_code = status.HTTP_400_BAD_REQUEST


class NotFound(ApplicationError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Forbidden(ApplicationError):
    code = "forbidden"
    status_code = status.HTTP_403_FORBIDDEN


def error_body(code: str, message: str, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def _first_message(detail: Any) -> str:
    """The first human-readable message of a DRF error detail, prefixed with its field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


# DRF's own exceptions, by class, to our public codes.
_DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "invalid_api_key"),
    (exceptions.AuthenticationFailed, "invalid_api_key"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.ParseError, "invalid_request"),
    (exceptions.ValidationError, "invalid_request"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.NotFound, "not_found"),
    (exceptions.PermissionDenied, "forbidden"),
]


def api_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("request_too_large", "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # An unexpected failure is still answered in the API's shape; the traceback goes to the log.
        logger.exception("Unhandled error in %s", context.get("view"))
        return Response(
            error_body("internal_error", "The server failed to handle this request."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.Throttled):
        message = "Too many requests."
        if exc.wait is not None:
            message = f"Too many requests; retry in {int(exc.wait) or 1} s."
    elif isinstance(exc, exceptions.ValidationError):
        message = _first_message(exc.detail)
    else:
        message = str(exc.detail)
    response.data = error_body(code, message)
    return response
