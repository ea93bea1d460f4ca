"""The one signal the product needs: a new user gets a wallet with the bonus.

Whichever way a user comes to exist (register, Google, the admin,
``createsuperuser``, a script), the ``post_save`` of its creation runs this in
the same transaction as the user's ``INSERT`` when the caller has one open
(every service in ``accounts`` does), so the user and the wallet commit
together. ``wallet_get_or_create`` is idempotent, so a re-save or a racing
request grants nothing more.
"""

from wallets.services import wallet_get_or_create


def create_wallet_for_new_user(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created:  # fixtures load rows as they are; re-saves change nothing
        return
    wallet_get_or_create(user=instance)
