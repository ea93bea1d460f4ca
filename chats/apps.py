from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"
    verbose_name = "Chats"

    def ready(self) -> None:
        from chats.v1.wire import openai_error
        from core.views import error_dialect_register

        # Django's own error pages (404, 413, 500) under /v1/ speak OpenAI's shape, as its views do.
        error_dialect_register("/v1/", openai_error)
