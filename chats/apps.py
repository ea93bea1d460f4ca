from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"
    verbose_name = "Chats"

    def ready(self) -> None:
        from chats.usage.selectors import usage_audit
        from chats.v1.wire import openai_error
        from core.views import error_dialect_register
        from wallets.audit import audit_check_register

        # Django's own error pages (404, 413, 500) under /v1/ speak OpenAI's shape, as its views do.
        error_dialect_register("/v1/", openai_error)
        # audit_wallets also checks the ledger's charges against the usage records.
        audit_check_register("chats.usage", usage_audit)
