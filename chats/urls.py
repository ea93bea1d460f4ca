from django.urls import path
from rest_framework.routers import SimpleRouter

from chats import streaming, views

router = SimpleRouter()
router.register("categories", views.CategoryViewSet, basename="category")
router.register("sessions", views.SessionViewSet, basename="session")

urlpatterns = [
    path("sessions/<uuid:pk>/messages/", streaming.session_messages_endpoint, name="session-messages"),
    *router.urls,
]
