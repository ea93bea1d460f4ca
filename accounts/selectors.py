"""Reads for accounts."""

import hmac

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import ApiKey, User, api_key_digest, login_key
from core.errors import NotFound


def login_id_taken(login_id: str, *, exclude_pk: int | None = None) -> bool:
    """Whether an account (other than ``exclude_pk``) holds ``login_id``, ignoring case and width."""
    users = User.objects.filter(login_key=login_key(login_id))
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()


def api_keys_for_user(*, user: User) -> QuerySet[ApiKey]:
    """The user's keys, revoked and expired ones too (the list orders them, newest first)."""
    return ApiKey.objects.filter(user=user)


def api_key_get(*, user: User, key_id) -> ApiKey:
    """The user's key; another user's is "not found", never "forbidden"."""
    try:
        key = api_keys_for_user(user=user).filter(pk=key_id).first()
    except ValidationError:  # not a UUID (the router's lookup takes any segment): no such key
        key = None
    if key is None:
        raise NotFound("API key not found.")
    return key


def api_key_by_secret(secret: str) -> ApiKey | None:
    """The key whose secret this is, with its user, in one query; ``None`` if there is none.

    Looked up by the secret's digest, a unique index, so the time taken does not depend on
    how much of a guess matches a real secret; the digests are then compared in constant
    time all the same. Revoked and expired keys are returned too: the caller says why it
    refuses one.
    """
    digest = api_key_digest(secret)
    key = ApiKey.objects.select_related("user").filter(digest=digest).first()
    if key is None or not hmac.compare_digest(key.digest, digest):
        return None
    return key
