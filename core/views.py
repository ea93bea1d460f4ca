"""Probes for the load balancer, and JSON error pages for the API's URLs."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views import defaults

from core.exceptions import UNEXPECTED_ERROR, error_response

API_PREFIXES = ("/api/", "/auth/", "/v1/")


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about its dependencies."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """The process can serve: the database answers a query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any database failure means "not ready", never a 500 page
        return error_response("not_ready", "The database is unreachable.", 503)
    return JsonResponse({"status": "ok", "database": "ok"})


def page_not_found(request: HttpRequest, exception: Exception):
    if request.path.startswith(API_PREFIXES):
        return error_response("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if request.path.startswith(API_PREFIXES):
        return error_response(*UNEXPECTED_ERROR, 500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception):
    """Django's answer to a ``SuspiciousOperation`` outside DRF (e.g. a plain streaming view)."""
    if request.path.startswith(API_PREFIXES):
        if isinstance(exception, RequestDataTooBig):
            max_bytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return error_response(
                "payload_too_large", "The request body is too large.", 413, {"max_bytes": max_bytes}
            )
        return error_response("bad_request", "The request could not be understood.", 400)
    return defaults.bad_request(request, exception)
