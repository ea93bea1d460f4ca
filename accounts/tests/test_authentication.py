"""ApiKeyAuthentication, on a test-only view that accepts nothing else (``accounts/tests/urls.py``)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.authentication import ApiKeyAuthentication, ApiKeyNotValid
from accounts.models import ApiKey, api_key_secret_new
from tests.helpers.asserts import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.urls")]

WHOAMI = "/api/test-key-whoami"


def call(authorization: str | None):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(WHOAMI)


@pytest.fixture
def key_and_secret(user) -> tuple[ApiKey, str]:
    return services.api_key_create(user=user, name="script")


def test_a_live_key_authenticates_its_user(key_and_secret):
    key, secret = key_and_secret

    response = call(f"Bearer {secret}")

    assert response.status_code == 200, response.content
    assert response.json() == {"user": "alice", "key": str(key.pk)}


def test_request_auth_is_the_key_and_user_its_owner(key_and_secret, user):
    key, secret = key_and_secret
    request = APIRequestFactory().get(WHOAMI, HTTP_AUTHORIZATION=f"bearer {secret}")

    authenticated_user, auth = ApiKeyAuthentication().authenticate(request)

    assert authenticated_user == user
    assert isinstance(auth, ApiKey) and auth.pk == key.pk


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Basic cGstYWJjOmRlZg==",
        "Token pk-abcdef",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
    ],
)
def test_other_credentials_are_left_to_other_authenticators(header):
    request = APIRequestFactory().get(WHOAMI, HTTP_AUTHORIZATION=header)

    assert ApiKeyAuthentication().authenticate(request) is None


def test_a_jwt_is_not_a_key(user):
    response = call(f"Bearer {RefreshToken.for_user(user).access_token}")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_authenticate_header_matches_jwts():
    from rest_framework_simplejwt.authentication import JWTAuthentication

    request = APIRequestFactory().get(WHOAMI)

    assert ApiKeyAuthentication().authenticate_header(request) == JWTAuthentication().authenticate_header(
        request
    )


def refused(authorization: str, message: str) -> None:
    response = call(authorization)
    error = assert_error(response, 401, "token_not_valid")
    assert error["message"] == message
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_unknown_key_is_refused(key_and_secret):
    refused(f"Bearer {api_key_secret_new()}", "Invalid API key.")
    refused("Bearer pk-" + "a" * 1000, "Invalid API key.")
    refused("Bearer pk-a b", "Invalid Authorization header: the API key must not contain spaces.")


def test_a_non_ascii_key_is_refused():
    request = APIRequestFactory().get(WHOAMI, HTTP_AUTHORIZATION="Bearer pk-\u00e9t\u00e9")

    with pytest.raises(ApiKeyNotValid):
        ApiKeyAuthentication().authenticate(request)


def test_a_revoked_key_is_refused_at_once(key_and_secret, user):
    key, secret = key_and_secret
    assert call(f"Bearer {secret}").status_code == 200

    services.api_key_revoke(user=user, key_id=key.pk)

    refused(f"Bearer {secret}", "This API key has been revoked.")


def test_an_expired_key_is_refused(user):
    key, secret = services.api_key_create(user=user, name="k", expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    refused(f"Bearer {secret}", "This API key has expired.")


def test_a_key_not_yet_expired_works(user):
    _, secret = services.api_key_create(user=user, name="k", expires_at=timezone.now() + timedelta(hours=1))

    assert call(f"Bearer {secret}").status_code == 200


def test_a_deactivated_users_key_is_refused_at_once(key_and_secret, user):
    _, secret = key_and_secret
    assert call(f"Bearer {secret}").status_code == 200

    services.users_deactivate(users=[user])

    refused(f"Bearer {secret}", "This API key's account is deactivated.")


def test_first_use_records_last_used_at(key_and_secret):
    key, secret = key_and_secret
    before = timezone.now()

    call(f"Bearer {secret}")

    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at >= before


def test_a_recently_used_key_costs_one_query_and_no_write(key_and_secret, django_assert_num_queries):
    key, secret = key_and_secret
    call(f"Bearer {secret}")
    key.refresh_from_db()
    first_use = key.last_used_at

    with django_assert_num_queries(1):
        assert call(f"Bearer {secret}").status_code == 200
    for _ in range(5):
        call(f"Bearer {secret}")

    key.refresh_from_db()
    assert key.last_used_at == first_use


def test_last_used_at_is_written_again_after_a_minute(key_and_secret, django_assert_num_queries):
    key, secret = key_and_secret
    long_ago = timezone.now() - timedelta(seconds=61)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=long_ago)

    with django_assert_num_queries(2):  # the lookup, then the conditional UPDATE
        call(f"Bearer {secret}")

    key.refresh_from_db()
    assert key.last_used_at > long_ago


def test_the_conditional_update_writes_once_for_racing_workers(key_and_secret):
    """Two workers that both loaded a stale key: the second UPDATE finds nothing to change."""
    key, _ = key_and_secret
    stale_a = ApiKey.objects.get(pk=key.pk)
    stale_b = ApiKey.objects.get(pk=key.pk)

    assert services.api_key_mark_used(api_key=stale_a) is True
    assert services.api_key_mark_used(api_key=stale_b) is False
