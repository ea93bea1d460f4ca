from django.urls import path
from rest_framework.routers import SimpleRouter

from chats import views

router = SimpleRouter()
router.register("categories", views.CategoryViewSet, basename="category")
router.register("sessions", views.SessionViewSet, basename="session")

urlpatterns = [
    path("sessions/<uuid:pk>/messages/", views.session_messages, name="session-messages"),
    *router.urls,
]
