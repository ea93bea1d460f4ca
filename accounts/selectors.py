"""Reads for accounts."""

from accounts.models import User, login_key


def login_id_taken(login_id: str, *, exclude_pk: int | None = None) -> bool:
    """Whether an account (other than ``exclude_pk``) holds ``login_id``, ignoring case and width."""
    users = User.objects.filter(login_key=login_key(login_id))
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()
