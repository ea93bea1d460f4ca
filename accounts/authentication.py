"""Authentication: a JWT (simplejwt's, its user read plainly), or a personal API key.

``Authorization: Bearer pk-…`` is a personal API key, for the OpenAI-compatible ``/v1/``.
The scheme is read in any letter case (``bearer``, ``BEARER``), as RFC 7235 has it. A refusal
says which credential the route takes: an access token on ``/api/`` and ``/auth/``
(:class:`JWTAuthentication`), a key on ``/v1/`` (:func:`api_key_wanted`).

Every request reads its key from the database (one query, the key and its user), with no
cache: a revoked key, an expired one or a deactivated user is refused at once by every
worker. ``/api/keys/`` itself does not accept keys (JWT only): a key cannot make keys.
"""

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.request import Request
from rest_framework_simplejwt import authentication as simplejwt
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.models import API_KEY_SCHEME, ApiKey, User
from accounts.selectors import api_key_by_secret, user_by_id
from accounts.services import api_key_mark_used

KEYWORD = "Bearer"
# Longer than any key this server issues ("pk-" and 43 characters); a longer one is not ours.
SECRET_MAX_LENGTH = 256
# simplejwt's AUTH_HEADER_TYPES, in lower case: the scheme is matched in any case.
JWT_HEADER_TYPES = frozenset(header_type.lower() for header_type in simplejwt.AUTH_HEADER_TYPE_BYTES)


def _api_key_wanted_message() -> str:
    return (
        f"This API takes a Parley API key (Authorization: Bearer {API_KEY_SCHEME}…); "
        f"create one at {reverse('api_keys:api-key-list')}."
    )


class JWTAuthentication(simplejwt.JWTAuthentication):
    """simplejwt's, and its checks, with the token's user read by :func:`accounts.selectors.user_by_id`.

    Its scheme is matched in any letter case; a personal API key and an expired token are
    refused with what to do instead.
    """

    def get_raw_token(self, header: bytes) -> bytes | None:
        parts = header.split()
        if not parts or parts[0].lower() not in JWT_HEADER_TYPES:
            return None  # not ours: no credentials, or another scheme
        if len(parts) > 1 and parts[1].startswith(API_KEY_SCHEME.encode()):
            raise AuthenticationFailed(
                f"/api/ and /auth/ take an access token from {reverse('accounts:auth-login')}; "
                "API keys work on /v1/ only.",
                code="api_key_not_accepted",
            )
        if len(parts) != 2:
            raise AuthenticationFailed(
                "Authorization header must contain two space-delimited values",
                code="bad_authorization_header",
            )
        return parts[1]

    def get_validated_token(self, raw_token: bytes) -> Token:
        # simplejwt's loop over AUTH_TOKEN_CLASSES (its per-class messages, which the error
        # shape never showed, left out), but an expired token says so: every class decodes
        # with the same signature and expiry check, so the first expiry is the answer.
        for token_class in api_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError:
                raise InvalidToken(
                    "The access token has expired; refresh it at "
                    f"{reverse('accounts:auth-token-refresh')} (or log in again)."
                ) from None
            except TokenError:
                continue
        raise InvalidToken("Given token not valid for any token type")

    def get_user(self, validated_token: Token) -> User:
        if api_settings.USER_ID_FIELD != "id":  # pragma: no cover - a settings mistake, said at once
            raise NotImplementedError("JWTAuthentication reads users by id (SIMPLE_JWT USER_ID_FIELD).")
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        user = user_by_id(user_id)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        return user


class ApiKeyNotValid(AuthenticationFailed):
    """A ``pk-`` key was sent and is refused: unknown, revoked, expired, or its user inactive."""

    default_detail = "The API key is not valid."
    default_code = "invalid_api_key"


def api_key_authenticate(secret: str) -> ApiKey:
    """The live key ``secret`` belongs to, its ``user`` loaded and active; or ``ApiKeyNotValid``.

    One query, plus one UPDATE at most once a minute per key (``last_used_at``).
    """
    key = api_key_by_secret(secret) if len(secret) <= SECRET_MAX_LENGTH else None
    if key is None:
        raise ApiKeyNotValid("Invalid API key.")
    now = timezone.now()
    if key.revoked_at is not None:
        raise ApiKeyNotValid("This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise ApiKeyNotValid("This API key has expired.")
    if not key.user.is_active:
        raise ApiKeyNotValid("This API key's account is deactivated.")
    api_key_mark_used(api_key=key, now=now)
    return key


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication by personal API key; ``request.auth`` is the :class:`ApiKey`.

    Any other header (another scheme, a bearer token not starting with ``pk-``, such as a
    JWT) is left to the next authentication class.
    """

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if len(parts) < 2 or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if not parts[1].startswith(API_KEY_SCHEME.encode()):
            return None
        if len(parts) > 2:
            raise ApiKeyNotValid("Invalid Authorization header: the API key must not contain spaces.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise ApiKeyNotValid("Invalid API key.") from None
        key = api_key_authenticate(secret)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        # As simplejwt's JWTAuthentication says it, so a 401 asks for the same thing.
        return f'{KEYWORD} realm="{self.www_authenticate_realm}"'


def api_key_wanted(request: Request) -> AuthenticationFailed | NotAuthenticated:
    """Why a request that no key authenticated is refused, where only keys are taken (``/v1/``).

    No credentials at all; a JWT, or another scheme, where a key is wanted; or a bearer
    secret that is no key of ours (an OpenAI ``sk-…``): three answers, each saying what to send.
    """
    parts = get_authorization_header(request).split()
    if not parts:
        return NotAuthenticated(f"No API key was sent. {_api_key_wanted_message()}")
    if parts[0].lower() != KEYWORD.lower().encode() or len(parts) != 2 or parts[1].count(b".") == 2:
        return AuthenticationFailed(_api_key_wanted_message(), code="api_key_wanted")
    return ApiKeyNotValid("Invalid API key.")


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI schema's ``jwtAuth``, as drf-spectacular describes simplejwt's, for ours."""

    target_class = JWTAuthentication


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The OpenAPI schema's ``apiKeyAuth``: what ``/v1/`` takes, a bearer token that is a personal key."""

    target_class = ApiKeyAuthentication
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": f"A personal API key ({API_KEY_SCHEME}…), made at /api/keys/.",
        }
