from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from chats import selectors, services
from chats.serializers import (
    CategorySerializer,
    MessageSerializer,
    SessionCreateInputSerializer,
    SessionNotesInputSerializer,
    SessionRenameInputSerializer,
    SessionRowSerializer,
    SessionSerializer,
)
from core.openapi import error_responses
from core.pagination import CursorPagination


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


@extend_schema_view(
    get=extend_schema(
        description="The session's messages, oldest first.",
        responses={200: MessageSerializer(many=True), **error_responses(400, 401, 404)},
    )
)
class SessionMessagesView(ListAPIView):
    """``GET /api/sessions/{id}/messages/``: the history, oldest first.

    ``POST`` on the same URL streams a reply: :mod:`chats.streaming`.
    """

    serializer_class = MessageSerializer
    pagination_class = MessagePagination

    def get_queryset(self):
        session = selectors.session_get(user=self.request.user, session_id=self.kwargs["pk"])
        return selectors.messages_for_session(session=session)
