import io
import json
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions as drf_exceptions
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.authentication import JWTAuthentication

from chats import selectors, services
from chats.replies import ReplyEvent, release_connection, reply_events
from chats.serializers import (
    CategorySerializer,
    MessageInputSerializer,
    MessageSerializer,
    ReplySerializer,
    SessionCreateInputSerializer,
    SessionNotesInputSerializer,
    SessionRenameInputSerializer,
    SessionRowSerializer,
    SessionSerializer,
)
from core.exceptions import exception_handler
from core.openapi import error_responses
from core.pagination import CursorPagination
from core.parsers import JSONParser


class CategoryPagination(CursorPagination):
    ordering = ("order", "slug")


class SessionPagination(CursorPagination):
    ordering = "-updated_at"


class MessagePagination(CursorPagination):
    ordering = "created_at"


# 400: a bad page_size; 401: a bearer token was sent and is not valid (the list itself is public);
# 404: a cursor that is not one of ours.
@extend_schema_view(
    list=extend_schema(responses={200: CategorySerializer(many=True), **error_responses(400, 401, 404)})
)
class CategoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = CategorySerializer
    pagination_class = CategoryPagination
    permission_classes = [AllowAny]

    def get_queryset(self):
        return selectors.categories_active()


@extend_schema_view(
    list=extend_schema(responses={200: SessionSerializer(many=True), **error_responses(400, 401, 404)}),
    retrieve=extend_schema(responses={200: SessionSerializer, **error_responses(401, 404)}),
    destroy=extend_schema(responses={204: None, **error_responses(401, 404)}),
)
class SessionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = SessionSerializer
    pagination_class = SessionPagination

    def get_queryset(self):
        return selectors.session_rows_for_user(user=self.request.user)

    def get_serializer_class(self):
        return SessionRowSerializer if self.action == "list" else SessionSerializer

    def get_object(self):
        return selectors.session_get(user=self.request.user, session_id=self.kwargs["pk"])

    @extend_schema(
        request=SessionCreateInputSerializer,
        responses={201: SessionSerializer, **error_responses(400, 401, 413)},
    )
    def create(self, request: Request) -> Response:
        data = SessionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(user=request.user, **data.validated_data)
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SessionRenameInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 401, 404, 413)},
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        data = SessionRenameInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_rename(session=self.get_object(), **data.validated_data)
        return Response(SessionSerializer(session).data)

    def perform_destroy(self, instance) -> None:
        services.session_delete(session=instance)

    @extend_schema(
        request=SessionNotesInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 401, 404, 413)},
    )
    @action(detail=True, methods=["put"])
    def notes(self, request: Request, pk=None) -> Response:
        data = SessionNotesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_set_notes(session=self.get_object(), **data.validated_data)
        return Response(SessionSerializer(session).data)


def _sse_event_schema(name: str, data: str) -> dict:
    """One Server-Sent Event: its name, and its ``data`` line, a JSON document described in words.

    OpenAPI 3.0 can say neither that ``data`` holds JSON (``contentSchema`` is 3.1) nor what a
    stream's items are (``itemSchema`` is 3.2), so ``schema`` describes one event, as tools read it.
    """
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [name]},
            "data": {"type": "string", "description": f"JSON: {data}"},
        },
    }


SSE_EVENT_SCHEMA = {
    "oneOf": [
        _sse_event_schema("start", "`{user_message: Message, assistant_message_id: uuid}`, first."),
        _sse_event_schema("delta", "`{content: string}`, a piece of the reply, repeated."),
        _sse_event_schema("done", "`{message: Message, usage: Usage, cost: int, balance: int}`, last."),
        _sse_event_schema("error", "`Error` (`{error: {code, message, details}}`), last, instead of done."),
    ]
}


@extend_schema_view(
    get=extend_schema(
        description="The session's messages, oldest first.",
        responses={200: MessageSerializer(many=True), **error_responses(400, 401, 404)},
    )
)
class SessionMessagesView(ListAPIView):
    """``GET /api/sessions/{id}/messages/``: the history, oldest first.

    ``POST`` on the same URL is served by the async view below (DRF views are
    sync, and a streamed reply must not hold a thread); it is declared here
    only so that the OpenAPI schema describes it.
    """

    serializer_class = MessageSerializer
    pagination_class = MessagePagination

    def get_queryset(self):
        session = selectors.session_get(user=self.request.user, session_id=self.kwargs["pk"])
        return selectors.session_messages(session=session)

    @extend_schema(
        description=(
            "Send a message and receive the reply, streamed as Server-Sent Events, or as one JSON body "
            "with `Accept: application/json`. The most the reply can cost is reserved first "
            "(402 `insufficient_funds` otherwise); the real cost is charged when it ends."
        ),
        request=MessageInputSerializer,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=SSE_EVENT_SCHEMA,
                description=(
                    "Server-Sent Events: `start` {user_message, assistant_message_id}, `delta` {content} "
                    "repeated, then `done` {message, usage, cost, balance} or `error` {error}."
                ),
            ),
            (201, "application/json"): OpenApiResponse(
                response=ReplySerializer, description="With `Accept: application/json`: the whole reply."
            ),
            # Refusals come before the stream starts, as JSON; 502/503 only in JSON mode (a stream
            # that fails sends an `error` event instead).
            **error_responses(400, 401, 402, 404, 413, 502, 503),
        },
    )
    def post(self, request: Request, pk=None) -> Response:  # pragma: no cover - routed to session_messages
        raise drf_exceptions.MethodNotAllowed("POST")


_history = SessionMessagesView.as_view()


@csrf_exempt
async def session_messages(request: HttpRequest, pk) -> HttpResponse:
    """One URL, two natures: the history is a DRF list; a new message streams its reply."""
    if request.method != "POST":
        return await sync_to_async(_history)(request, pk=pk)
    try:
        return await _post_message(request, pk)
    except Exception as exc:
        return _error_response(exc)


# Let the schema generator see the DRF class that documents this URL.
session_messages.cls = SessionMessagesView
session_messages.initkwargs = {}


def _error_response(exc: Exception) -> JsonResponse:
    """The same error shape as every DRF view, from the one exception handler."""
    response = exception_handler(exc, {"view": None})
    headers = {name: value for name, value in response.items() if name.lower() != "content-type"}
    return JsonResponse(response.data, status=response.status_code, headers=headers)


def _authenticate(request: HttpRequest):
    authenticator = JWTAuthentication()
    try:
        result = authenticator.authenticate(request)
        if result is None:
            raise drf_exceptions.NotAuthenticated()
    except (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed) as exc:
        # A 401 names the scheme to use (WWW-Authenticate: Bearer), as DRF's own views do.
        exc.auth_header = authenticator.authenticate_header(request)
        raise
    return result[0]


def _read_content(request: HttpRequest) -> str:
    """The message's text, read as every DRF view reads a body: with the project's JSON parser."""
    body = JSONParser().parse(io.BytesIO(request.body)) if request.body else None
    if not isinstance(body, dict):
        raise drf_exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    data = MessageInputSerializer(data=body)
    data.is_valid(raise_exception=True)
    return data.validated_data["content"]


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/event-stream" not in accept


def _begin(request: HttpRequest, pk) -> services.ReplyPlan:
    """Everything before the stream, in one trip to a thread (each trip costs latency).

    The connection is handed back before the stream starts: a stream can last
    a minute, and holding a pooled connection that long would let a few
    hundred readers starve every other request.
    """
    try:
        user = _authenticate(request)
        content = _read_content(request)
        return services.reply_begin(user=user, session_id=pk, content=content)
    finally:
        release_connection()


async def _post_message(request: HttpRequest, pk) -> HttpResponse:
    plan = await sync_to_async(_begin)(request, pk)
    if _wants_json(request):
        return await _reply_as_json(plan)
    response = StreamingHttpResponse(_sse(plan), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse_frame(name: str, data: dict) -> bytes:
    # Bytes, not str: Django would otherwise look the charset up in the
    # Content-Type header again for each of a reply's frames.
    return f"event: {name}\ndata: {json.dumps(data, cls=DjangoJSONEncoder)}\n\n".encode()


async def _sse(plan: services.ReplyPlan) -> AsyncIterator[bytes]:
    start = {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message_id": plan.assistant_message_id,
    }
    yield _sse_frame("start", start)
    async for event in reply_events(plan):
        yield _sse_frame(event.name, event.data)


async def _reply_as_json(plan: services.ReplyPlan) -> JsonResponse:
    last: ReplyEvent | None = None
    async for event in reply_events(plan):
        last = event
    if last.name == "error":
        return JsonResponse(last.data, status=last.status)
    body = {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message": last.data["message"],
        **{key: last.data[key] for key in ("usage", "cost", "balance")},
    }
    return JsonResponse(body, status=status.HTTP_201_CREATED, encoder=DjangoJSONEncoder)
