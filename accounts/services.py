"""Writes for accounts: sign-up, sign-in, tokens, profile and password.

Every function that creates a user runs in one transaction, so the wallet
that ``wallets.signals`` creates on ``post_save`` commits with the user or not
at all.
"""

from collections.abc import Iterable

from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.selectors import login_id_taken
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
