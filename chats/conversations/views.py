"""The HTTP side of conversations: categories, sessions, history, notes and exports."""

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.conversations import exports
from chats.conversations.pagination import KeysetCursorPagination
from chats.conversations.selectors import (
    branch_messages,
    categories_active,
    category_get,
    session_get,
    session_rows_for_user,
)
from chats.conversations.serializers import (
    AccountExportSerializer,
    CategorySerializer,
    ExportFormatSerializer,
    HistoryQuerySerializer,
    MessageSerializer,
    SessionCreateInputSerializer,
    SessionExportSerializer,
    SessionListQuerySerializer,
    SessionNotesInputSerializer,
    SessionRowSerializer,
    SessionSerializer,
    SessionUpdateInputSerializer,
)
from chats.conversations.services import session_create, session_delete, session_set_notes, session_update
from core.openapi import error_responses
from core.pagination import CursorPagination


class CategoryPagination(CursorPagination):
    ordering = ("order", "slug")


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
        return categories_active()


class ExportNegotiation(DefaultContentNegotiation):
    """For the exports, whose ``?format=`` names the document's format, not a renderer.

    DRF reads ``?format=`` as a renderer's name (``URL_FORMAT_OVERRIDE``) and answers 404 to
    ``markdown``; here the view validates it (400 otherwise), and errors are always JSON.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _download(content, *, filename: str, content_type: str) -> HttpResponse:
    return HttpResponse(content, content_type=content_type, headers=_attachment(filename))


def _attachment(filename: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


EXPORT_RESPONSES = {
    (200, "application/json"): SessionExportSerializer,
    (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="A transcript."),
}


@extend_schema_view(
    list=extend_schema(
        parameters=[SessionListQuerySerializer],
        description=(
            "Pinned sessions first, then the most recent activity; with `q` on PostgreSQL, "
            "pinned first, then the most relevant."
        ),
        responses={200: SessionSerializer(many=True), **error_responses(400, 401, 404)},
    ),
    retrieve=extend_schema(responses={200: SessionSerializer, **error_responses(401, 404)}),
    destroy=extend_schema(responses={204: None, **error_responses(401, 404)}),
)
class SessionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = SessionSerializer
    # What OPTIONS lists under POST, PATCH and PUT (core.metadata.InputMetadata).
    input_serializer_classes = {
        "create": SessionCreateInputSerializer,
        "partial_update": SessionUpdateInputSerializer,
        "notes": SessionNotesInputSerializer,
    }
    pagination_class = KeysetCursorPagination

    def get_queryset(self):
        """The list's rows, filtered and ordered as the query string asks (the only action that reads it)."""
        params = SessionListQuerySerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        slug = params.validated_data.get("category")
        return session_rows_for_user(
            user=self.request.user,
            archived=params.validated_data["archived"],
            category=category_get(slug=slug) if slug else None,
            q=params.validated_data.get("q", ""),
        )

    def get_serializer_class(self):
        return SessionRowSerializer if self.action == "list" else SessionSerializer

    def get_object(self):
        return session_get(user=self.request.user, session_id=self.kwargs["pk"])

    @extend_schema(
        request=SessionCreateInputSerializer,
        responses={201: SessionSerializer, **error_responses(400, 401, 413)},
    )
    def create(self, request: Request) -> Response:
        data = SessionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = session_create(user=request.user, **data.validated_data)
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SessionUpdateInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 401, 404, 413)},
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        data = SessionUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = session_update(session=self.get_object(), **data.validated_data)
        return Response(SessionSerializer(session).data)

    def perform_destroy(self, instance) -> None:
        session_delete(session=instance)

    @extend_schema(
        request=SessionNotesInputSerializer,
        responses={200: SessionSerializer, **error_responses(400, 401, 404, 413)},
    )
    @action(detail=True, methods=["put"])
    def notes(self, request: Request, pk=None) -> Response:
        data = SessionNotesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = session_set_notes(session=self.get_object(), **data.validated_data)
        return Response(SessionSerializer(session).data)

    @extend_schema(
        parameters=[ExportFormatSerializer],
        description=(
            "The conversation as a file to download (`Content-Disposition: attachment`): as JSON, "
            "every message with its `parent_id`; as Markdown, one branch (the current one, or "
            "`leaf`'s), each message with siblings saying which of them it is."
        ),
        responses={**EXPORT_RESPONSES, **error_responses(400, 401, 404)},
    )
    @action(detail=True, methods=["get"], content_negotiation_class=ExportNegotiation, pagination_class=None)
    def export(self, request: Request, pk=None) -> HttpResponse:
        params = ExportFormatSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        session = self.get_object()
        export_format = params.validated_data["format"]
        if export_format == "markdown":
            leaf_id = params.validated_data.get("leaf")
            content = exports.session_markdown(session=session, leaf_id=leaf_id)
            content_type = "text/markdown; charset=utf-8"
        else:
            content, content_type = exports.session_json(session=session), "application/json"
        return _download(
            content, filename=exports.session_filename(session, export_format), content_type=content_type
        )


@extend_schema_view(
    get=extend_schema(
        description=(
            "Every session of the caller with its messages, oldest first, as one JSON document to "
            "download, streamed as it is read from the database."
        ),
        responses={(200, "application/json"): AccountExportSerializer, **error_responses(401)},
    )
)
class AccountExportView(APIView):
    """``GET /api/export/``: the caller's whole account of conversations."""

    content_negotiation_class = ExportNegotiation

    def get(self, request: Request) -> StreamingHttpResponse:
        pieces = exports.account_json(user=request.user)
        if isinstance(request._request, ASGIRequest):
            pieces = exports.in_a_thread(pieces)
        return StreamingHttpResponse(
            pieces, content_type="application/json", headers=_attachment(exports.account_filename())
        )


@extend_schema_view(
    get=extend_schema(
        parameters=[HistoryQuerySerializer],
        description=(
            "One branch of the conversation, oldest first: the path from the first message to the newest "
            "(the current branch), or to `leaf`."
        ),
        responses={200: MessageSerializer(many=True), **error_responses(400, 401, 404)},
    )
)
class SessionMessagesView(ListAPIView):
    """``GET /api/sessions/{id}/messages/``: the history of one branch, oldest first.

    ``POST`` on the same URL streams a reply: :mod:`chats.replies.views`.
    """

    serializer_class = MessageSerializer
    pagination_class = MessagePagination

    def get_queryset(self):
        params = HistoryQuerySerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        session = session_get(user=self.request.user, session_id=self.kwargs["pk"])
        return branch_messages(session=session, leaf_id=params.validated_data.get("leaf"))
