"""The error shape in the OpenAPI schema, so clients see it next to each operation."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

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
