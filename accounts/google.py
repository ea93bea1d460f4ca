"""Google sign-in with an ID token from a Google client (web, Android, iOS).

The token is verified as django-allauth's Google provider does it, with
PyJWT and allauth's ``jwtkit`` helpers: the RS256 signature against Google's
X.509 certificates, fetched through the socialaccount adapter's ``requests``
session; the audience, which must be one of ``settings.GOOGLE_CLIENT_ID``; the
issuer, in either of the two forms Google uses; the expiry; and a replay check
on ``jti`` in the Django cache. allauth's own ``verify_and_decode`` takes a
single app and a single issuer, and fetches the certificates on every call, so
the steps are taken here: the certificates are kept in the Django cache (shared
by the workers) for as long as Google's ``Cache-Control: max-age`` allows.

The Google account is linked by its ``sub`` through allauth's
``SocialAccount`` (provider ``google``, ``uid`` = ``sub``), never by e-mail: an
existing password account with the same address is left alone and the
Google user gets an account of their own.
"""

import hashlib
import re
import secrets
import threading
import unicodedata
from typing import Any

import jwt
import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.google import views as google_views
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.errors import AccountInactive, GoogleNotConfigured, GoogleUnavailable
from accounts.models import User, login_key
from accounts.selectors import login_id_taken
from core.errors import TokenNotValid

PROVIDER = "google"
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
ALGORITHM = "RS256"

_LOGIN_ID_MAX = User._meta.get_field("login_id").max_length
_DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length
_EMAIL_MAX = User._meta.get_field("email").max_length
_NOT_LOGIN_ID_CHARS = re.compile(r"[^\w.@+-]")
_CERTS_FETCH_LOCK = threading.Lock()
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age=(\d+)", re.IGNORECASE)


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
    kid = _check_header(id_token)
    public_key = jwtkit.lookup_kid_pem_x509_certificate(google_certs(), kid)
    if public_key is None:
        raise TokenNotValid(f"The Google ID token is not valid (Invalid 'kid': '{kid}').")
    try:
        claims = jwt.decode(
            id_token,
            key=public_key,
            algorithms=[ALGORITHM],
            issuer=ISSUERS,
            audience=client_ids,
            options={"verify_signature": True, "verify_iss": True, "verify_aud": True, "verify_exp": True},
        )
        jwtkit.verify_jti(claims)
    except (jwt.PyJWTError, OAuth2Error) as exc:
        reason = str(exc).rstrip(".")
        raise TokenNotValid(f"The Google ID token is not valid ({reason}).") from None
    _check_claims(claims)
    return claims


def google_certs() -> dict[str, str]:
    """Google's signing certificates (``{kid: PEM}``), from the cache while Google says they are fresh.

    The first sign-in after they expire fetches them again. A burst of sign-ins
    fetches them once: the threads of a worker wait for the one fetching, and
    other workers find them in the cache (unless they missed at the same moment).
    """
    url = _certs_url()
    cache_key = f"accounts:google-certs:{hashlib.sha256(url.encode()).hexdigest()}"
    certs = cache.get(cache_key)
    if certs is not None:
        return certs
    with _CERTS_FETCH_LOCK:
        certs = cache.get(cache_key)  # another thread may have fetched them while this one waited
        if certs is not None:
            return certs
        return _google_certs_fetch(url, cache_key)


def _google_certs_fetch(url: str, cache_key: str) -> dict[str, str]:
    try:
        with get_adapter().get_requests_session() as session:
            response = session.get(url)
            response.raise_for_status()
            certs = response.json()
    except (requests.RequestException, ValueError) as exc:  # unreachable, or not JSON
        raise GoogleUnavailable() from exc
    if not isinstance(certs, dict):
        raise GoogleUnavailable()
    fresh_for = _fresh_for(response.headers)
    if fresh_for > 0:
        cache.set(cache_key, certs, fresh_for)
    return certs


def _fresh_for(headers) -> int:
    """Seconds a response stays fresh by its ``Cache-Control: max-age`` less its ``Age``; 0 if never."""
    cache_control = headers.get("Cache-Control", "")
    match = _MAX_AGE.search(cache_control)
    if match is None or "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return 0
    age = headers.get("Age", "0")
    return int(match.group(1)) - (int(age) if age.isdigit() else 0)


def _certs_url() -> str:
    """Read per call (not at import like allauth) so an operator or a test can point elsewhere."""
    return settings.SOCIALACCOUNT_PROVIDERS.get(PROVIDER, {}).get("CERTS_URL", google_views.CERTS_URL)


def _check_header(id_token: str) -> str:
    """The token's key id; anything but RS256 with a key id is refused before any key is looked up."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise TokenNotValid("The Google ID token is not a JWT.") from None
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        raise TokenNotValid("The Google ID token must be signed with RS256 and name its key.")
    return header["kid"]


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
    """Login ids to try, in order: NFKC-normalised like any other, and short enough once folded."""
    fallback = _fit(f"google-{sub}", _LOGIN_ID_MAX)
    local_part = unicodedata.normalize("NFKC", email.rpartition("@")[0])
    base = _fit(_NOT_LOGIN_ID_CHARS.sub("", local_part), _LOGIN_ID_MAX - 4) or fallback
    numbered = [f"{base}-{n}" for n in range(2, 10)]
    return [base, *numbered, fallback]


def _fit(login_id: str, room: int) -> str:
    """``login_id`` cut so that it and its key (which folding may lengthen) fit in ``room``."""
    login_id = login_id[:room]
    while len(login_key(login_id)) > room:
        login_id = login_id[:-1]
    return login_id


def _save_with_free_login_id(user: User, candidates: list[str]) -> None:
    taken = set(
        User.objects.filter(login_key__in=[login_key(c) for c in candidates]).values_list(
            "login_key", flat=True
        )
    )
    free = [c for c in candidates if login_key(c) not in taken]
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
            if not login_id_taken(login_id):
                raise  # refused for another reason than the login id: not ours to paper over
    raise IntegrityError("no free login id")  # pragma: no cover - needs 10 lost races in a row
