"""Writes for accounts: sign-up, sign-in, tokens, profile, password and personal API keys.

Every function that creates a user runs in one transaction, so the wallet
that ``wallets.signals`` creates on ``post_save`` commits with the user or not
at all.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.errors import ApiKeyLimitReached
from accounts.models import API_KEY_PREFIX_LENGTH, ApiKey, User, api_key_digest, api_key_secret_new
from accounts.selectors import api_key_get, login_id_taken
from core.errors import Conflict, InvalidCredentials, TokenNotValid, ValidationFailed


def _validate_password(password: str, user: User, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(details={field: list(exc.messages)}) from None


def user_register(*, login_id: str, password: str, display_name: str = "", email: str = "") -> User:
    login_id = User.normalize_username(login_id)
    user = User(login_id=login_id, display_name=display_name, email=User.objects.normalize_email(email))
    _validate_password(password, user)
    user.set_password(password)
    taken = Conflict("That login id is taken.", details={"login_id": ["That login id is taken."]})
    if login_id_taken(login_id):
        raise taken
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # Lost a race to the same login id, or something else refused the row (the wallet
        # the signal creates, say): only the first is the client's to fix.
        if login_id_taken(login_id):
            raise taken from None
        raise
    return user


def user_authenticate(*, login_id: str, password: str) -> User:
    """Deactivated users fail here exactly like a wrong password (ModelBackend)."""
    user = authenticate(login_id=login_id, password=password)
    if user is None:
        raise InvalidCredentials()
    return user


def user_update_profile(*, user: User, display_name: str | None = None, email: str | None = None) -> User:
    changed = []
    if display_name is not None:
        user.display_name = display_name
        changed.append("display_name")
    if email is not None:
        user.email = User.objects.normalize_email(email)
        changed.append("email")
    if changed:
        user.save(update_fields=changed)
    return user


def tokens_issue(*, user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def _refresh_token_claim(raw: str) -> tuple[RefreshToken, User]:
    """Parse a refresh token and find its active user, or refuse it as invalid.

    simplejwt's own refresh serializer raises ``DoesNotExist`` for a deleted
    user (a 500); here a vanished or deactivated user is a plain 401.
    """
    try:
        token = RefreshToken(raw)
    except TokenError as exc:
        raise TokenNotValid(str(exc)) from None
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None:
        raise TokenNotValid("The token's user is not active.")
    return token, user


def _blacklist_once(token: RefreshToken) -> None:
    """Blacklist ``token``; if it already was (a replay or a race), refuse it."""
    _, created = token.blacklist()
    if not created:
        raise TokenNotValid("Token is blacklisted")


@transaction.atomic
def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate: the old refresh token dies in the same transaction that issues the new one."""
    token, user = _refresh_token_claim(refresh)
    _blacklist_once(token)
    return tokens_issue(user=user)


@transaction.atomic
def user_logout(*, refresh: str) -> None:
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise TokenNotValid(str(exc)) from None
    _blacklist_once(token)


@transaction.atomic
def user_change_password(*, user: User, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise ValidationFailed(
            "The current password is wrong.", details={"old_password": ["The current password is wrong."]}
        )
    _validate_password(new_password, user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    tokens_revoke_all(user=user)


def tokens_revoke_all(*, user: User) -> int:
    """Blacklist every refresh token the user holds; returns how many were still live."""
    return _blacklist_outstanding(OutstandingToken.objects.filter(user=user))


def _blacklist_outstanding(tokens) -> int:
    live = tokens.filter(blacklistedtoken__isnull=True)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
    )
    return len(revoked)


@transaction.atomic
def users_deactivate(*, users: Iterable[User]) -> int:
    """Deactivate ``users`` and kill their refresh tokens; returns how many were active.

    A deactivated user's tokens are refused anyway (login, refresh and access
    all check ``is_active``); blacklisting the refresh tokens as well means a
    later reactivation does not revive sessions an administrator ended.
    """
    ids = [user.pk for user in users]
    changed = User.objects.filter(pk__in=ids, is_active=True).update(is_active=False)
    _blacklist_outstanding(OutstandingToken.objects.filter(user_id__in=ids))
    return changed


def users_activate(*, users: Iterable[User]) -> int:
    ids = [user.pk for user in users]
    return User.objects.filter(pk__in=ids, is_active=False).update(is_active=True)


# --- Personal API keys ---------------------------------------------------------

#: ``last_used_at`` is written at most this often per key, so a burst of requests costs no writes.
API_KEY_LAST_USED_RESOLUTION = timedelta(seconds=60)


@transaction.atomic
def api_key_create(
    *,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    monthly_cap: int | None = None,
    models: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key for ``user`` and its secret, which is stored only as a digest: show it once.

    The live keys are counted under a lock on the user's row, so two creations at once
    cannot both take the last place under ``API_KEYS_PER_USER``.
    """
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        message = "The expiry must be in the future."
        raise ValidationFailed(message, details={"expires_at": [message]})
    if monthly_cap is not None and monthly_cap < 1:
        message = "The monthly cap must be a positive number of credits."
        raise ValidationFailed(message, details={"monthly_cap": [message]})
    list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    limit = settings.API_KEYS_PER_USER
    if ApiKey.objects.filter(user=user).live(now=now).count() >= limit:
        raise ApiKeyLimitReached(
            f"You hold {limit} live API keys, the most allowed; revoke one first.", details={"limit": limit}
        )
    secret = api_key_secret_new()
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=secret[:API_KEY_PREFIX_LENGTH],
        digest=api_key_digest(secret),
        created_at=now,
        expires_at=expires_at,
        monthly_cap=monthly_cap,
        # Names, not checked against the catalogue (accounts knows nothing of it): one that names
        # no model simply never matches, and /v1/ answers 404 model_not_found for it.
        allowed_models=list(dict.fromkeys(models or [])),
    )
    return key, secret


def api_key_revoke(*, user: User, key_id) -> None:
    """Revoke the user's key; revoking it again changes nothing. Another user's key: 404."""
    api_keys_revoke(keys=[api_key_get(user=user, key_id=key_id)])


def api_keys_revoke(*, keys: Iterable[ApiKey]) -> int:
    """Revoke ``keys`` (the admin's action); returns how many were not revoked yet.

    The row stays, for the usage records and ledger entries that name it. Every
    request looks its key up in the database, so the revocation holds at once everywhere.
    """
    ids = [key.pk for key in keys]
    return ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_mark_used(*, api_key: ApiKey, now: datetime | None = None) -> bool:
    """Record that ``api_key`` was just used, unless that was recorded within the last minute.

    Nothing is written when the loaded key says it was used recently; otherwise one conditional
    UPDATE, so that of several workers using one key at once, one writes. Returns whether it wrote.
    """
    now = now or timezone.now()
    since = now - API_KEY_LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at >= since:
        return False
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=since)
    written = ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    if written:
        api_key.last_used_at = now
    return bool(written)
