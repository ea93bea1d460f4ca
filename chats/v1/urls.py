"""``/v1/``: OpenAI's paths, without trailing slashes as its clients call them (with one, too)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from chats.v1 import views
from core.routing import either_slash

router = SimpleRouter(trailing_slash=False)


router.register("models", views.ModelsViewSet, basename="v1-model")


urlpatterns = [
    path("chat/completions", views.chat_completions, name="v1-chat-completions"),
    path("responses", views.responses, name="v1-responses"),
    path("embeddings", views.embeddings, name="v1-embeddings"),
    *router.urls,
]
urlpatterns = either_slash(urlpatterns)
