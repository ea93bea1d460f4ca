"""Google sign-in with an ID token from a Google client (web, Android, iOS).

The token is verified by django-allauth's Google machinery
(``allauth.socialaccount.internal.jwtkit.verify_and_decode``): the RS256
signature against Google's X.509 certificates, fetched through the
socialaccount adapter's ``requests`` session; the audience, which must be one
of ``settings.GOOGLE_CLIENT_ID``; the issuer, in either of the two forms
Google uses; the expiry; and a replay check on ``jti`` in the Django cache.
allauth's own ``_verify_and_decode`` takes a single app and a single issuer,
so it is called one level down with every client id and both issuers.

The Google account is linked by its ``sub`` through allauth's
``SocialAccount`` (provider ``google``, ``uid`` = ``sub``), never by e-mail: an
existing password account with the same address is left alone and the
Google user gets an account of their own.
"""

import re
import secrets
from typing import Any

import jwt
import requests
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.google import views as google_views
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.utils import timezone

from accounts.errors import AccountInactive, GoogleNotConfigured, GoogleUnavailable
from accounts.models import User
from core.errors import TokenNotValid

PROVIDER = "google"
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
ALGORITHM = "RS256"

_LOGIN_ID_MAX = User._meta.get_field("login_id").max_length
_DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length
_EMAIL_MAX = User._meta.get_field("email").max_length
_NOT_LOGIN_ID_CHARS = re.compile(r"[^\w.@+-]")


def google_sign_in(*, request: HttpRequest, id_token: str) -> tuple[User, bool]:
    """Verify ``id_token`` and return its user, and whether that user was created now."""
    claims = google_id_token_verify(id_token=id_token)
    user, created = google_user_get_or_create(claims=claims)
    if not user.is_active:
        raise AccountInactive()
    return user, created


def google_id_token_verify(*, id_token: str) -> dict[str, Any]:
    """The verified claims of a Google ID token, or :class:`TokenNotValid`."""
    client_ids = list(settings.GOOGLE_CLIENT_ID)
    if not client_ids:
        raise GoogleNotConfigured()
    _check_header(id_token)
    try:
        claims = jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=_certs_url(),
            issuer=ISSUERS,
            audience=client_ids,
            lookup_kid=jwtkit.lookup_kid_pem_x509_certificate,
        )
    except OAuth2Error as exc:
        reason = str(exc.__cause__ or exc).rstrip(".")
        raise TokenNotValid(f"The Google ID token is not valid ({reason}).") from None
    except (requests.RequestException, ValueError) as exc:  # unreachable, or not JSON
        raise GoogleUnavailable() from exc
    _check_claims(claims)
    return claims


def _certs_url() -> str:
    """Read per call (not at import like allauth) so an operator or a test can point elsewhere."""
    return settings.SOCIALACCOUNT_PROVIDERS.get(PROVIDER, {}).get("CERTS_URL", google_views.CERTS_URL)


def _check_header(id_token: str) -> None:
    """Refuse anything but RS256 with a key id before allauth trusts the header's ``alg``."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise TokenNotValid("The Google ID token is not a JWT.") from None
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        raise TokenNotValid("The Google ID token must be signed with RS256 and name its key.")


def _check_claims(claims: dict[str, Any]) -> None:
    # PyJWT checks ``exp`` only when present; Google always sends it, so its absence is suspect.
    if "exp" not in claims:
        raise TokenNotValid("The Google ID token has no expiry.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenNotValid("The Google ID token names no account (sub).")
    verified = claims.get("email_verified")
    if not claims.get("email") or verified not in (True, "true"):
        raise TokenNotValid("The Google account's e-mail address is not verified.")


def google_user_get_or_create(*, claims: dict[str, Any]) -> tuple[User, bool]:
    """The user linked to the verified ``claims``' ``sub``, creating both if this is the first time."""
    account = _linked_account(claims["sub"])
    if account is not None:
        SocialAccount.objects.filter(pk=account.pk).update(extra_data=claims, last_login=timezone.now())
        return account.user, False
    try:
        return google_user_create(claims=claims), True
    except IntegrityError:
        # Another request signed the same Google account in first (the unique
        # provider/uid pair refused our row, and our user rolled back with it).
        account = _linked_account(claims["sub"])
        if account is None:
            raise
        return account.user, False


def _linked_account(sub: str) -> SocialAccount | None:
    return SocialAccount.objects.select_related("user").filter(provider=PROVIDER, uid=sub).first()


@transaction.atomic
def google_user_create(*, claims: dict[str, Any]) -> User:
    """Create a user for a Google account and link it, in one transaction.

    The user has no usable password: they sign in through Google only, until
    they set one. Their login id comes from the e-mail's local part (or
    ``google-<sub>``), with a number appended when that is taken.
    """
    email = User.objects.normalize_email(claims["email"])
    user = User(
        display_name=str(claims.get("name") or "")[:_DISPLAY_NAME_MAX],
        email=email if len(email) <= _EMAIL_MAX else "",  # longer than RFC 5321 allows: keep none
    )
    user.set_unusable_password()
    _save_with_free_login_id(user, _login_id_candidates(email=email, sub=claims["sub"]))
    SocialAccount.objects.create(user=user, provider=PROVIDER, uid=claims["sub"], extra_data=claims)
    return user


def _login_id_candidates(*, email: str, sub: str) -> list[str]:
    fallback = f"google-{sub}"[:_LOGIN_ID_MAX]
    base = _NOT_LOGIN_ID_CHARS.sub("", email.rpartition("@")[0])[: _LOGIN_ID_MAX - 4] or fallback
    numbered = [f"{base}-{n}" for n in range(2, 10)]
    return [base, *numbered, fallback]


def _save_with_free_login_id(user: User, candidates: list[str]) -> None:
    taken = set(
        User.objects.annotate(key=Lower("login_id"))
        .filter(key__in=[c.lower() for c in candidates])
        .values_list("key", flat=True)
    )
    free = [c for c in candidates if c.lower() not in taken]
    # A random suffix ends the search should all be taken, or be taken meanwhile.
    free.append(f"{candidates[-1][: _LOGIN_ID_MAX - 9]}-{secrets.token_hex(4)}")
    for login_id in free:
        user.login_id = login_id
        try:
            with transaction.atomic():
                user.save(force_insert=True)
            return
        except IntegrityError:
            user.pk = None
    raise IntegrityError("no free login id")  # pragma: no cover - needs 10 lost races in a row
