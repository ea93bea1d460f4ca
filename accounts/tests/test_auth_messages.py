"""What a refused request is told: which credential the route takes, and what to do.

``/api/`` and ``/auth/`` take an access token, ``/v1/`` a personal key; each says so to
a client that sent the other, an expired token says it expired, and the ``Bearer``
scheme is read in any letter case everywhere (RFC 7235).
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import api_key_secret_new
from tests.helpers.asserts import assert_error

pytestmark = pytest.mark.django_db

NOT_VALID = "Given token not valid for any token type"


# The URLs the messages name are the routes' own, as reverse() spells them.
def want_a_key() -> str:
    return (
        "This API takes a Parley API key (Authorization: Bearer pk-…); "
        f"create one at {reverse('api_keys:api-key-list')}."
    )


def want_a_token() -> str:
    return (
        f"/api/ and /auth/ take an access token from {reverse('accounts:auth-login')}; "
        "API keys work on /v1/ only."
    )


def expired() -> str:
    return (
        f"The access token has expired; refresh it at {reverse('accounts:auth-token-refresh')} "
        "(or log in again)."
    )


def get(path: str, authorization: str | None = None, method: str = "get"):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return getattr(client, method)(path, format="json")


def assert_refused_on_api(response, code: str, message: str) -> None:
    error = assert_error(response, 401, code)
    assert error["message"] == message
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def assert_refused_on_v1(response, message: str) -> None:
    """401 in OpenAI's shape, ``invalid_api_key`` whatever the reason; the message tells them apart."""
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error = response.json()["error"]
    assert (error["code"], error["type"], error["message"]) == (
        "invalid_api_key",
        "invalid_request_error",
        message,
    )


@pytest.fixture
def secret(user) -> str:
    return services.api_key_create(user=user, name="script")[1]


@pytest.fixture
def access(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


# --- /api/ and /auth/: an access token -----------------------------------------------------------


def test_an_expired_access_token_says_it_expired_and_where_to_refresh(user):
    refresh = RefreshToken.for_user(user)
    access = refresh.access_token
    access.set_exp(lifetime=-timedelta(seconds=1))

    for path in ("/api/wallet/", "/auth/me", "/api/keys/"):
        assert_refused_on_api(get(path, f"Bearer {access}"), "token_not_valid", expired())
    # The URL it names is the one that gives a new access token.
    refresh_url = reverse("accounts:auth-token-refresh")
    assert refresh_url.startswith("/auth/token/refresh")
    renewed = APIClient().post(refresh_url, {"refresh": str(refresh)}, format="json")
    assert renewed.status_code == 200, renewed.content
    assert get("/api/wallet/", f"Bearer {renewed.json()['access']}").status_code == 200


def test_a_token_that_is_not_valid_for_other_reasons_is_not_called_expired(user):
    forged = str(RefreshToken.for_user(user).access_token)[:-2] + "xx"

    for token in ("not-a-jwt", forged, str(RefreshToken.for_user(user))):  # a refresh token: the wrong type
        assert_refused_on_api(get("/api/wallet/", f"Bearer {token}"), "token_not_valid", NOT_VALID)


def test_an_api_key_on_api_says_where_keys_work_and_what_api_takes(secret):
    for path, method in (("/api/wallet/", "get"), ("/api/keys/", "post"), ("/auth/me", "get")):
        assert_refused_on_api(get(path, f"Bearer {secret}", method), "token_not_valid", want_a_token())
    # An unknown key too: the route is wrong whatever the key.
    assert_refused_on_api(
        get("/api/wallet/", f"Bearer {api_key_secret_new()}"), "token_not_valid", want_a_token()
    )


def test_no_credentials_on_api_is_still_not_authenticated():
    response = get("/api/wallet/")

    assert_refused_on_api(response, "not_authenticated", "Authentication credentials were not provided.")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_read_in_any_case_on_api_and_on_v1(scheme, access, secret):
    assert get("/api/wallet/", f"{scheme} {access}").status_code == 200
    assert get("/auth/me", f"{scheme} {access}").status_code == 200
    assert get("/v1/models", f"{scheme} {secret}").status_code == 200


def test_another_scheme_on_api_is_no_credentials(access):
    assert_refused_on_api(
        get("/api/wallet/", f"Token {access}"),
        "not_authenticated",
        "Authentication credentials were not provided.",
    )


# --- /v1/: a personal key ------------------------------------------------------------------------


def test_no_credentials_on_v1_says_a_key_is_wanted():
    assert_refused_on_v1(get("/v1/models"), f"No API key was sent. {want_a_key()}")


def test_a_jwt_on_v1_says_this_api_takes_a_key(access):
    assert_refused_on_v1(get("/v1/models", f"Bearer {access}"), want_a_key())
    assert_refused_on_v1(get("/v1/models", f"bearer {access}"), want_a_key())
    # The streamed endpoints decide in their own trip to a thread: the same answer.
    assert_refused_on_v1(get("/v1/chat/completions", f"Bearer {access}", "post"), want_a_key())
    assert_refused_on_v1(get("/v1/embeddings", f"Bearer {access}", "post"), want_a_key())


@pytest.mark.parametrize(
    "authorization", ["Basic cGstYWJjOmRlZg==", "Token pk-abcdef", "Bearer", "Bearer a b"]
)
def test_another_scheme_on_v1_says_this_api_takes_a_key(authorization):
    assert_refused_on_v1(get("/v1/models", authorization), want_a_key())


def test_a_wrong_key_on_v1_is_an_invalid_api_key(user, secret):
    for wrong in ("sk-proj-abcdef0123456789", api_key_secret_new(), secret[:-1]):
        assert_refused_on_v1(get("/v1/models", f"Bearer {wrong}"), "Invalid API key.")
    assert_refused_on_v1(get("/v1/chat/completions", "Bearer sk-abc", "post"), "Invalid API key.")


def test_a_revoked_key_on_v1_says_so(user):
    key, secret = services.api_key_create(user=user, name="k")
    services.api_key_revoke(user=user, key_id=key.pk)

    assert_refused_on_v1(get("/v1/models", f"Bearer {secret}"), "This API key has been revoked.")
