"""The support role: the Django group whose members answer customers in the admin.

A support member is staff (``is_staff``), not a superuser, and in the
``Support`` group. The group's permissions are the list below, set by
``manage.py support_group`` (run after ``migrate``; again after an upgrade
changes the list). With them the admin's index shows the support sections
(``core.admin_site``) and nothing of the libraries'.

What support does: find users, edit their profiles, deactivate and reactivate
customers (never staff: ``accounts.admin.UserAdmin``), revoke API keys; read
wallets, the ledger, holds, code batches and codes; top up, refund or adjust a
wallet and set its spending caps; read categories, chat sessions (and note on
them) and usage. Making or voiding codes, prices and categories, groups and
the libraries' models stay with the administrators (superusers).
"""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

SUPPORT_GROUP = "Support"

SUPPORT_PERMISSIONS = (
    "accounts.view_user",
    "accounts.change_user",
    "accounts.view_apikey",
    "accounts.change_apikey",  # the "Revoke" action; every field of a key is read-only
    "wallets.view_wallet",
    "wallets.change_wallet",  # the spending caps; the balance moves only through the ledger
    "wallets.adjust_wallet",  # "Top up / adjust"
    "wallets.view_ledgerentry",  # also the Usage report
    "wallets.view_hold",
    "wallets.view_codebatch",
    "wallets.view_redemptioncode",
    "chats.view_category",
    "chats.view_chatsession",
    "chats.change_chatsession",  # its title and notes
    "chats.view_message",  # a session's messages, inline on its page
    "chats.view_usagerecord",
)


class PermissionMissing(LookupError):
    """A permission of the list is not in the database (``migrate`` has not run)."""


def support_group_sync() -> tuple[Group, bool]:
    """The ``Support`` group with exactly ``SUPPORT_PERMISSIONS``; and whether it was created now."""
    wanted = {tuple(name.split(".")) for name in SUPPORT_PERMISSIONS}
    candidates = Permission.objects.select_related("content_type").filter(
        content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
    )
    permissions = [p for p in candidates if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in permissions}
    if missing:
        raise PermissionMissing(", ".join(sorted(".".join(name) for name in missing)))
    with transaction.atomic():
        group, created = Group.objects.get_or_create(name=SUPPORT_GROUP)
        group.permissions.set(permissions)
    return group, created
