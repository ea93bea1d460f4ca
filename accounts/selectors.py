"""Reads for accounts."""

import hmac

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from accounts.models import ApiKey, User, api_key_digest, login_key
from core.db.rows import columns, fetch_one, instance_from_row, table
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
    keys, users = ApiKey._meta.concrete_fields, User._meta.concrete_fields
    row = fetch_one(
        f"SELECT {columns(keys, 'k')}, {columns(users, 'u')} FROM {table(ApiKey)} k"
        f" JOIN {table(User)} u ON u.id = k.user_id WHERE k.digest = %s",
        [digest],
    )
    if row is None:
        return None
    key = instance_from_row(ApiKey, keys, row[: len(keys)])
    if not hmac.compare_digest(key.digest, digest):
        return None
    key.user = instance_from_row(User, users, row[len(keys) :])
    return key


def user_by_id(user_id) -> User | None:
    """The user with this id, active or not; None if there is none.

    Every request with a token reads its user: one plain statement (as
    :func:`api_key_by_secret`), since compiling ``User.objects.get`` costs
    several times the statement itself.
    """
    try:
        pk = User._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    users = User._meta.concrete_fields
    row = fetch_one(f"SELECT {columns(users)} FROM {table(User)} WHERE id = %s", [pk])
    return None if row is None else instance_from_row(User, users, row)
