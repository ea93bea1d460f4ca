"""``/v1/`` in the OpenAPI schema: Parley's own objects in full, OpenAI's bodies by reference.

The request and response bodies of ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/embeddings``
are OpenAI's, forwarded as sent (docs/api.md says what Parley owns in them): the schema says they
are JSON objects and links OpenAI's reference, rather than copy a specification that keeps
growing. The model objects carry Parley's prices, and its errors are OpenAI's shape with Parley's
``details``: both are described field by field, so that Swagger UI and generated clients show them.

The views are plain async Django views; as for the chat API's streamed POST
(:mod:`chats.replies.views`), each gets a DRF view here for drf-spectacular to read
(``endpoint.cls``), never routed.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAuthentication

REFERENCE = "https://platform.openai.com/docs/api-reference"

_DESCRIPTIONS = {
    400: (
        "invalid_request_error (`param` names the parameter at fault), unsupported_parameter; "
        "or the upstream's own refusal, as it said it."
    ),
    401: "No live personal API key (`Bearer pk-…`): none, a JWT, or a key unknown, revoked or expired.",
    402: "insufficient_quota or spend_cap_reached: the wallet cannot cover the most this can cost.",
    403: "model_not_allowed: the API key is limited to other models (its `models`).",
    404: "model_not_found: no active model (category) has this id.",
    413: "invalid_request_error: the body exceeds the server's limit (details.max_bytes).",
    415: "invalid_request_error: the body is not JSON (send Content-Type: application/json).",
    429: "rate_limit_exceeded: too many requests, or too many running at once.",
    502: "upstream_error: the model's provider failed.",
    503: "The model's provider is unavailable or not configured.",
}


class OpenAIErrorDetailSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField(required=False, help_text="OpenAI's: invalid_request_error, …")
    param = serializers.CharField(required=False, allow_null=True, help_text="The parameter at fault.")
    code = serializers.CharField(required=False, allow_null=True, help_text="Stable, machine-readable.")
    details = serializers.DictField(required=False, help_text="Parley's: field errors or numbers.")


class OpenAIErrorSerializer(serializers.Serializer):
    error = OpenAIErrorDetailSerializer()


def openai_error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """As :func:`core.openapi.error_responses`, in OpenAI's error shape."""
    return {
        status: OpenApiResponse(OpenAIErrorSerializer, description=_DESCRIPTIONS[status])
        for status in statuses
    }


class V1ModelPricingSerializer(serializers.Serializer):
    unit = serializers.CharField(help_text="credits per 1,000 tokens")
    prompt = serializers.CharField(help_text="A decimal string: exact, as the ledger computes.")
    completion = serializers.CharField(help_text="A decimal string.")


class V1ModelSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The category's slug: what `model` names in a request.")
    object = serializers.CharField(help_text="model")
    created = serializers.IntegerField(help_text="Unix seconds.")
    owned_by = serializers.CharField()
    pricing = V1ModelPricingSerializer(help_text="Parley's addition to OpenAI's model object.")


@extend_schema_serializer(many=False)  # the list is this object, not an array of them
class V1ModelListSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = V1ModelSerializer(many=True)


# extend_schema() arguments of ModelsViewSet's list and retrieve.
MODEL_LIST = {
    "operation_id": "v1_models_list",
    "summary": "List models",
    "description": (
        "The active categories (by slug), then the catalogue's active models (by id), as OpenAI's model"
        f" objects with Parley's prices. See {REFERENCE}/models/list."
    ),
    "responses": {200: V1ModelListSerializer, **openai_error_responses(401)},
}
MODEL_DETAIL = {
    "operation_id": "v1_models_retrieve",
    "summary": "Retrieve a model",
    "description": (
        "An active category by its slug, or else an active catalogue model by its id."
        f" See {REFERENCE}/models/retrieve."
    ),
    "parameters": [
        OpenApiParameter(
            "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="A model's id (a category's slug)."
        )
    ],
    "responses": {200: V1ModelSerializer, **openai_error_responses(401, 404)},
}

_OBJECT = {"application/json": OpenApiTypes.OBJECT}
# Every POST: a personal key, a JSON body, the message throttle and the wallet's hold.
_POST_ERRORS = openai_error_responses(400, 401, 402, 403, 404, 413, 415, 429, 502, 503)


class OpenAIURLView(APIView):
    """A ``/v1/`` POST as the schema sees it: authenticated by a personal API key."""

    authentication_classes = [ApiKeyAuthentication]

    def post(self, request: Request) -> Response:  # pragma: no cover - never routed here
        raise exceptions.MethodNotAllowed("POST")


class ChatCompletionsURLView(OpenAIURLView):
    @extend_schema(
        operation_id="v1_chat_completions",
        summary="Create a chat completion",
        description=(
            "OpenAI's chat completion, billed to the key's owner: the most it can cost is held "
            "first (402 otherwise), the real cost charged when it ends. The body is OpenAI's, "
            f"forwarded as sent: see {REFERENCE}/chat/create. `usage` adds `cost` (credits)."
        ),
        request=_OBJECT,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A `chat.completion` object."
            ),
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="With `stream: true`: `chat.completion.chunk` events, then `data: [DONE]`.",
            ),
            **_POST_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:  # pragma: no cover - never routed here
        return super().post(request)


class ResponsesURLView(OpenAIURLView):
    @extend_schema(
        operation_id="v1_responses",
        summary="Create a model response",
        description=(
            "OpenAI's Responses API, stateless: every request carries its whole conversation. "
            f"Billed as a chat completion. See {REFERENCE}/responses/create."
        ),
        request=_OBJECT,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A `response` object."
            ),
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="With `stream: true`: `response.*` events."
            ),
            **_POST_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:  # pragma: no cover - never routed here
        return super().post(request)


class EmbeddingsURLView(OpenAIURLView):
    @extend_schema(
        operation_id="v1_embeddings",
        summary="Create embeddings",
        description=(
            "OpenAI's embeddings, billed by their prompt tokens at the model's prompt price. "
            f"See {REFERENCE}/embeddings/create. `usage` adds `cost` (credits)."
        ),
        request=_OBJECT,
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A `list` of embeddings."
            ),
            **_POST_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:  # pragma: no cover - never routed here
        return super().post(request)
