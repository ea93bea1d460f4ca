from django.urls import path, register_converter
from rest_framework.routers import SimpleRouter

from chats import streaming, views
from core.converters import UUIDAnyCaseConverter

register_converter(UUIDAnyCaseConverter, "uuid_any_case")

router = SimpleRouter()
router.register("categories", views.CategoryViewSet, basename="category")
router.register("sessions", views.SessionViewSet, basename="session")

urlpatterns = [
    path(
        "sessions/<uuid_any_case:pk>/messages/", streaming.session_messages_endpoint, name="session-messages"
    ),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/events/",
        streaming.reply_events_endpoint,
        name="reply-events",
    ),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/stop/",
        streaming.reply_stop_endpoint,
        name="reply-stop",
    ),
    path(
        "sessions/<uuid_any_case:pk>/messages/<uuid_any_case:message_id>/regenerate/",
        streaming.reply_regenerate_endpoint,
        name="reply-regenerate",
    ),
    path("export/", views.AccountExportView.as_view(), name="account-export"),
    path("usage/", views.UsageView.as_view(), name="usage"),
    *router.urls,
]
