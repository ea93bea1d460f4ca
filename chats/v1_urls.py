"""``/v1/``: OpenAI's paths, without trailing slashes, as its clients call them."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from chats import openai_api

router = SimpleRouter(trailing_slash=False)
router.register("models", openai_api.ModelViewSet, basename="v1-model")

urlpatterns = [
    path("chat/completions", openai_api.chat_completions, name="v1-chat-completions"),
    *router.urls,
]
