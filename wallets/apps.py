from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


class WalletsConfig(AppConfig):
    name = "wallets"
    verbose_name = "Money"

    def ready(self) -> None:
        from wallets.signals import create_wallet_for_new_user

        post_save.connect(
            create_wallet_for_new_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="wallets.create_wallet_for_new_user",
        )
