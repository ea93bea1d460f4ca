"""One exception handler: every error of every endpoint in one JSON shape.

``{"error": {"code": ..., "message": ..., "details": {...}}}``
"""

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from core.errors import DomainError, PayloadTooLarge, ServiceUnavailable, dependency_down
from core.responses import JsonResponse

logger = logging.getLogger(__name__)

_CODES_BY_DRF_CLASS: list[tuple[type[drf.APIException], str]] = [
    (InvalidToken, "token_not_valid"),
    (drf.NotAuthenticated, "not_authenticated"),
    # Credentials were sent but refused: with JWT the only credential is a token (its
    # user deleted or deactivated, its signature or type wrong), so say which is wrong.
    (drf.AuthenticationFailed, "token_not_valid"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.Throttled, "throttled"),
    (drf.ParseError, "validation_error"),
    (drf.ValidationError, "validation_error"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
]


# What a client is told of a failure we did not foresee (the detail goes to the log only).
UNEXPECTED_ERROR = ("server_error", "An unexpected error occurred.")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    code: str, message: str, status: int, details: dict[str, Any] | None = None
) -> JsonResponse:
    """The error shape for plain Django views (health checks, 404/500 handlers, the stream)."""
    return JsonResponse(error_body(code, message, details), status=status)


def _validation_details(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {field: _as_messages(messages) for field, messages in detail.items()}
    return {"non_field_errors": _as_messages(detail)}


def _as_messages(detail: Any) -> Any:
    if isinstance(detail, list):
        return [_as_messages(item) if isinstance(item, (dict, list)) else str(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _as_messages(value) for key, value in detail.items()}
    return [str(detail)]


def _translate(exc: Exception) -> Exception:
    """Turn Django's and simplejwt's exceptions into DRF or domain ones."""
    if isinstance(exc, Http404):
        return drf.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return drf.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return drf.ValidationError(detail)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(details={"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
    if isinstance(exc, TokenError):
        return InvalidToken(str(exc))
    return dependency_down(exc) or exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    original, exc = exc, _translate(exc)
    headers: dict[str, str] = {}

    if isinstance(exc, DomainError):
        set_rollback()
        if isinstance(exc, ServiceUnavailable):
            logger.warning("A dependency is down: %s", exc.details["dependency"], exc_info=original)
        if exc.retry_after_seconds is not None:
            headers["Retry-After"] = str(exc.retry_after_seconds)
        body = error_body(exc.code, exc.message, exc.details)
        return Response(body, status=exc.status_code, headers=headers)

    if isinstance(exc, drf.APIException):
        set_rollback()
        code = next((code for cls, code in _CODES_BY_DRF_CLASS if isinstance(exc, cls)), "error")
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        details: dict[str, Any] = {}
        if isinstance(exc, drf.ValidationError):
            message = "The request is not valid."
            details = _validation_details(exc.detail)
        elif isinstance(exc, drf.Throttled):
            message = "Too many requests; try again later."
            if exc.wait is not None:
                retry_after = max(1, math.ceil(exc.wait))
                details = {"retry_after": retry_after}
                headers["Retry-After"] = str(retry_after)
        elif isinstance(exc.detail, dict):
            message = str(exc.detail.get("detail", exc.default_detail))
        else:
            message = str(exc.detail)
        return Response(error_body(code, message, details), status=exc.status_code, headers=headers)

    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
    set_rollback()
    return Response(error_body(*UNEXPECTED_ERROR), status=500)
