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
        # A catalogue edit is seen at once by this process (and by the others within seconds).
        from django.db.models.signals import post_delete, post_save

        from chats.catalogue.cache import catalogue_forget
        from chats.catalogue.models import CatalogueModel, Deployment, Provider
        from chats.models import Category

        for model in (Category, CatalogueModel, Deployment, Provider):
            post_save.connect(catalogue_forget, sender=model, dispatch_uid=f"catalogue-{model.__name__}")
            post_delete.connect(
                catalogue_forget, sender=model, dispatch_uid=f"catalogue-{model.__name__}-del"
            )
