"""``/api/``: conversations, the replies within them, and usage."""

from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from chats.conversations import views as conversations
from chats.replies import views as replies
from chats.usage.views import UsageView
from core.converters import UUIDAnyCaseConverter
from core.routing import either_slash

register_converter(UUIDAnyCaseConverter, "uuid_any_case")

router = SimpleRouter()
router.register("categories", conversations.CategoryViewSet, basename="category")
router.register("sessions", conversations.SessionViewSet, basename="session")

urlpatterns = [
    path("sessions/<uuid_any_case:pk>/messages/", replies.session_messages_endpoint, name="session-messages"),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/events/",
        replies.reply_events_endpoint,
        name="reply-events",
    ),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/stop/",
        replies.reply_stop_endpoint,
        name="reply-stop",
    ),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/regenerate/",
        replies.reply_regenerate_endpoint,
        name="reply-regenerate",
    ),
    path("export/", conversations.AccountExportView.as_view(), name="account-export"),
    path("usage/", UsageView.as_view(), name="usage"),
    *router.urls,
]
urlpatterns = either_slash(urlpatterns)
