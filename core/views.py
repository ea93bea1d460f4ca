"""The index at ``/``, probes for the load balancer, and JSON error pages for the API's URLs."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest
from django.urls import reverse
from django.views import defaults
from django.views.decorators.http import require_safe

from core import openapi
from core.errors import ServiceUnavailable, dependency_down
from core.exceptions import UNEXPECTED_ERROR, error_body
from core.responses import JsonResponse

API_PREFIXES = ("/api/", "/auth/", "/v1/")

# An app that answers another dialect under its prefix (``/v1/``: OpenAI's error shape) registers
# how to rewrite the error body (``{"error": {code, message, details}}``) into it.
_ERROR_DIALECTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def error_dialect_register(prefix: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    _ERROR_DIALECTS[prefix] = rewrite


def error_body_for(
    path: str, code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error shape, in the dialect of the path's prefix."""
    body = error_body(code, message, details)
    for prefix, rewrite in _ERROR_DIALECTS.items():
        if path.startswith(prefix):
            return rewrite(body["error"])
    return body


def error_response_for(
    request: HttpRequest, code: str, message: str, status: int, details: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(error_body_for(request.path, code, message, details), status=status)


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    """Where a visitor of ``/`` goes next: there is no site here, only the API and its docs."""
    links = {"docs": "docs", "schema": "schema", "models": "v1-model-list"}
    return JsonResponse(
        {
            "name": "Parley",
            "version": settings.VERSION,
            **{key: request.build_absolute_uri(reverse(name)) for key, name in links.items()},
        }
    )


@require_safe  # a probe only reads; any other method is a 405, as the schema says
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """The process can serve: the database answers a query, and Redis (when ``REDIS_URL`` is set) a
    ping; a 503 names the one that does not."""
    checks = {"database": _database_answers}
    if settings.REDIS_URL:
        checks["redis"] = _redis_answers
    for name, answers in checks.items():
        try:
            answers()
        except Exception:  # any failure means "not ready", never a 500 page
            response = error_response_for(
                request, "not_ready", f"The {name} is unreachable.", 503, {"dependency": name}
            )
            response["Retry-After"] = str(ServiceUnavailable.retry_after_seconds)
            return response
    return JsonResponse({"status": "ok", **dict.fromkeys(checks, "ok")})


def _database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_answers() -> None:
    from core.redis import sync_client

    sync_client().ping()


# What the OpenAPI schema sees at the probes (core/openapi.py).
healthz.cls, healthz.initkwargs = openapi.HealthzURLView, {}
readyz.cls, readyz.initkwargs = openapi.ReadyzURLView, {}


def page_not_found(request: HttpRequest, exception: Exception):
    if request.path.startswith(API_PREFIXES):
        return error_response_for(request, "not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    """A plain view's failure: a dependency that did not answer is a 503 the client may retry."""
    if request.path.startswith(API_PREFIXES):
        down = dependency_down(getattr(request, "view_exception", None))
        if down is not None:
            response = error_response_for(request, down.code, down.message, down.status_code, down.details)
            response["Retry-After"] = str(down.retry_after_seconds)
            return response
        return error_response_for(request, *UNEXPECTED_ERROR, 500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception):
    """Django's answer to a ``SuspiciousOperation`` outside DRF (e.g. a plain streaming view)."""
    if request.path.startswith(API_PREFIXES):
        if isinstance(exception, RequestDataTooBig):
            max_bytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return error_response_for(
                request, "payload_too_large", "The request body is too large.", 413, {"max_bytes": max_bytes}
            )
        return error_response_for(request, "bad_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)
