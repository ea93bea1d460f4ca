"""The error shape in the OpenAPI schema, so clients see it next to each operation; each route once."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.routing import canonical_path

_DESCRIPTIONS = {
    400: "validation_error: the body is malformed or a field is wrong (details name the fields).",
    401: "not_authenticated, token_not_valid or invalid_credentials.",
    402: "insufficient_funds: the wallet cannot cover the most this can cost.",
    403: "permission_denied.",
    404: "not_found.",
    409: "conflict: the request clashes with existing data.",
    413: "payload_too_large: the body exceeds the server's limit (details.max_bytes).",
    415: "unsupported_media_type: the body is not JSON (send Content-Type: application/json).",
    429: "throttled: too many requests; retry after the Retry-After header's seconds.",
    502: "An upstream service failed.",
    503: "A service this needs is unavailable or not configured.",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable.")
    message = serializers.CharField(help_text="A human sentence.")
    details = serializers.DictField(help_text="Field errors ({field: [messages]}) or numbers.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """``responses=`` entries for ``extend_schema``: ``{**error_responses(400, 401)}``."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[status]) for status in statuses
    }


def canonical_endpoints(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular's preprocessing hook: each route as :func:`core.routing.canonical_path` spells it.

    Every API route is listed twice in the URLconf (with and without its trailing slash,
    :func:`core.routing.either_slash`); the schema names one, so clients generate one method each.
    """
    return [endpoint for endpoint in endpoints if canonical_path(endpoint[0]) == endpoint[0]]


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="ok")


class ReadinessSerializer(HealthSerializer):
    database = serializers.CharField(help_text="ok")


class ProbeURLView(APIView):
    """What the OpenAPI schema sees at a probe (``core.views.healthz``, ``readyz``): no credentials."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:  # pragma: no cover - never routed here
        raise exceptions.MethodNotAllowed("GET")


class HealthzURLView(ProbeURLView):
    @extend_schema(
        operation_id="healthz",
        tags=["probes"],
        description="The process is alive (for a load balancer's liveness probe); checks nothing else.",
        responses={200: HealthSerializer},
    )
    def get(self, request: Request) -> Response:  # pragma: no cover - never routed here
        return super().get(request)


class ReadyzURLView(ProbeURLView):
    @extend_schema(
        operation_id="readyz",
        tags=["probes"],
        description="The process can serve: its database answers (for a readiness probe).",
        responses={200: ReadinessSerializer, **error_responses(503)},
    )
    def get(self, request: Request) -> Response:  # pragma: no cover - never routed here
        return super().get(request)


class MetricsURLView(APIView):
    """What the OpenAPI schema sees at ``/metrics`` (``core.metrics.metrics_view``)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="metrics",
        tags=["probes"],
        description=(
            "Prometheus's text format: requests, replies, time to first token, upstream latency, tokens, "
            "credits, replies running, failovers, cooldowns. 404 unless `METRICS_TOKEN` is set; then "
            "`Authorization: Bearer <METRICS_TOKEN>` (401 without it)."
        ),
        responses={(200, "text/plain"): OpenApiTypes.STR, **error_responses(401, 404)},
    )
    def get(self, request: Request) -> Response:  # pragma: no cover - never routed here
        raise exceptions.MethodNotAllowed("GET")
