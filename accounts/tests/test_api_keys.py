"""Personal API keys: the services, ``/api/keys/`` through its URLs, and the limit under concurrency."""

import hashlib
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.errors import ApiKeyLimitReached
from accounts.models import ApiKey, api_key_digest
from core.errors import NotFound, ValidationFailed
from tests.helpers.asserts import assert_error
from tests.helpers.clients import bearer_client
from tests.helpers.concurrency import in_parallel, requires_postgres
from tests.helpers.processes import run

pytestmark = pytest.mark.django_db

KEYS = "/api/keys/"
KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "created_at",
    "last_used_at",
    "expires_at",
    "monthly_cap",
    "models",
    "revoked_at",
}


def detail(key) -> str:
    return f"{KEYS}{key.pk}/"


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


# --- model and services --------------------------------------------------------


def test_create_stores_only_the_digest_of_the_secret(user):
    key, secret = services.api_key_create(user=user, name="laptop")

    assert secret.startswith("pk-") and len(secret) == 46
    assert key.prefix == secret[:12]
    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest() == api_key_digest(secret)
    assert all(secret not in str(value) for value in vars(stored).values())


def test_each_key_gets_its_own_secret(user):
    secrets = {services.api_key_create(user=user, name=f"k{i}")[1] for i in range(5)}

    assert len(secrets) == 5


def test_create_refuses_an_expiry_in_the_past(user):
    with pytest.raises(ValidationFailed) as raised:
        services.api_key_create(user=user, name="old", expires_at=timezone.now() - timedelta(seconds=1))

    assert "expires_at" in raised.value.details
    assert not ApiKey.objects.exists()


def test_create_refuses_a_cap_below_one(user):
    with pytest.raises(ValidationFailed):
        services.api_key_create(user=user, name="zero", monthly_cap=0)


def test_live_excludes_revoked_and_expired_keys(user):
    live, _ = services.api_key_create(user=user, name="live")
    revoked, _ = services.api_key_create(user=user, name="revoked")
    services.api_key_revoke(user=user, key_id=revoked.pk)
    expired, _ = services.api_key_create(
        user=user, name="expired", expires_at=timezone.now() + timedelta(hours=1)
    )
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert list(ApiKey.objects.live()) == [live]
    assert [k.is_live() for k in ApiKey.objects.order_by("created_at")] == [True, False, False]


def test_limit_counts_live_keys_only(user, settings):
    settings.API_KEYS_PER_USER = 2
    first, _ = services.api_key_create(user=user, name="one")
    services.api_key_create(user=user, name="two")

    with pytest.raises(ApiKeyLimitReached) as raised:
        services.api_key_create(user=user, name="three")
    assert (raised.value.status_code, raised.value.code, raised.value.details) == (
        409,
        "api_key_limit",
        {"limit": 2},
    )

    services.api_key_revoke(user=user, key_id=first.pk)
    services.api_key_create(user=user, name="three")
    assert ApiKey.objects.filter(user=user).count() == 3


def test_limit_is_per_user(user, other_user, settings):
    settings.API_KEYS_PER_USER = 1
    services.api_key_create(user=user, name="mine")

    services.api_key_create(user=other_user, name="theirs")


def test_revoke_is_idempotent_and_keeps_the_row(user):
    key, _ = services.api_key_create(user=user, name="k")

    services.api_key_revoke(user=user, key_id=key.pk)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    services.api_key_revoke(user=user, key_id=key.pk)

    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_revoke_of_an_unknown_key_is_not_found(user, key_id):
    with pytest.raises(NotFound):
        services.api_key_revoke(user=user, key_id=key_id)


def test_revoke_of_another_users_key_is_not_found(user, other_user):
    key, _ = services.api_key_create(user=other_user, name="theirs")

    with pytest.raises(NotFound):
        services.api_key_revoke(user=user, key_id=key.pk)
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None


def test_admin_revoke_counts_only_keys_not_yet_revoked(user):
    a, _ = services.api_key_create(user=user, name="a")
    b, _ = services.api_key_create(user=user, name="b")
    services.api_key_revoke(user=user, key_id=a.pk)

    assert services.api_keys_revoke(keys=[a, b]) == 1


# --- POST /api/keys/ -----------------------------------------------------------


def test_create_returns_the_key_and_its_secret_once(auth_client, user):
    response = auth_client.post(KEYS, {"name": "laptop", "monthly_cap": 500}, format="json")

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == KEY_FIELDS | {"secret"}
    assert body["secret"].startswith("pk-")
    assert body["prefix"] == body["secret"][:12]
    assert (body["name"], body["monthly_cap"], body["revoked_at"], body["expires_at"]) == (
        "laptop",
        500,
        None,
        None,
    )
    key = ApiKey.objects.get(pk=body["id"])
    assert key.user == user and key.digest == api_key_digest(body["secret"])

    listed = auth_client.get(KEYS).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert body["secret"] not in str(listed)


def test_create_takes_an_expiry_with_a_time_zone(auth_client):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = auth_client.post(
        KEYS, {"name": "ci", "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S+02:00")}, format="json"
    )

    assert response.status_code == 201, response.content
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert key.expires_at == expires - timedelta(hours=2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 123}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "k", "monthly_cap": 0}, "monthly_cap"),
        ({"name": "k", "monthly_cap": -5}, "monthly_cap"),
        ({"name": "k", "monthly_cap": "5"}, "monthly_cap"),
        ({"name": "k", "monthly_cap": 5.0}, "monthly_cap"),
        ({"name": "k", "monthly_cap": True}, "monthly_cap"),
        ({"name": "k", "monthly_cap": 2**63}, "monthly_cap"),
        ({"name": "k", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"name": "k", "expires_at": "next week"}, "expires_at"),
        ({"name": "k", "expires_at": "2999-02-30T00:00:00Z"}, "expires_at"),
        ({"name": "k", "expires_at": 1767225600}, "expires_at"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(auth_client, body, field):
    error = assert_error(auth_client.post(KEYS, body, format="json"), 400, "validation_error")

    assert field in error["details"], error
    assert not ApiKey.objects.exists()


def test_create_takes_the_largest_cap(auth_client):
    response = auth_client.post(KEYS, {"name": "k", "monthly_cap": 2**63 - 1}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["monthly_cap"] == 2**63 - 1


def test_create_beyond_the_limit_is_a_conflict(auth_client, user, settings):
    settings.API_KEYS_PER_USER = 1
    services.api_key_create(user=user, name="one")

    error = assert_error(auth_client.post(KEYS, {"name": "two"}, format="json"), 409, "api_key_limit")

    assert error["details"] == {"limit": 1}


# --- GET /api/keys/ ------------------------------------------------------------


def test_list_shows_own_keys_newest_first_revoked_too(auth_client, user, other_user):
    old, _ = services.api_key_create(user=user, name="old")
    ApiKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    services.api_key_create(user=user, name="new")
    services.api_key_revoke(user=user, key_id=old.pk)
    services.api_key_create(user=other_user, name="theirs")

    response = auth_client.get(KEYS)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["name"] for row in rows] == ["new", "old"]
    assert all(set(row) == KEY_FIELDS for row in rows)
    assert rows[1]["revoked_at"] is not None


def test_list_is_paginated_in_a_flat_number_of_queries(
    auth_client, user, settings, django_assert_max_num_queries
):
    settings.API_KEYS_PER_USER = 25
    for i in range(25):
        services.api_key_create(user=user, name=f"k{i}")

    with django_assert_max_num_queries(2):
        first = auth_client.get(KEYS, {"page_size": 10}).json()
    second = auth_client.get(first["next"]).json()

    assert len(first["results"]) == len(second["results"]) == 10
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}


# --- DELETE /api/keys/{id}/ ----------------------------------------------------


def test_delete_revokes_and_the_key_is_still_listed(auth_client, user):
    key, _ = services.api_key_create(user=user, name="k")

    response = auth_client.delete(detail(key))
    again = auth_client.delete(detail(key))

    assert (response.status_code, again.status_code) == (204, 204)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert auth_client.get(KEYS).json()["results"][0]["revoked_at"] is not None


def test_delete_of_another_users_key_is_not_found(auth_client, other_user):
    key, _ = services.api_key_create(user=other_user, name="theirs")

    assert_error(auth_client.delete(detail(key)), 404, "not_found")
    assert_error(auth_client.delete(f"{KEYS}nonsense/"), 404, "not_found")
    key.refresh_from_db()
    assert key.revoked_at is None


def test_delete_takes_an_upper_case_id(auth_client, user):
    key, _ = services.api_key_create(user=user, name="k")

    assert auth_client.delete(f"{KEYS}{str(key.pk).upper()}/").status_code == 204


# --- a key cannot manage keys --------------------------------------------------


def test_keys_need_a_sign_in(api_client):
    response = api_client.get(KEYS)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [("get", KEYS, None), ("post", KEYS, {"name": "made by a key"}), ("delete", "{detail}", None)],
)
def test_a_key_cannot_list_make_or_revoke_keys(user, method, path, data):
    key, secret = services.api_key_create(user=user, name="k")
    client = key_client(secret)

    response = getattr(client, method)(path.format(detail=detail(key)), data, format="json")

    assert response.status_code == 401, response.content
    assert ApiKey.objects.count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_schema_describes_keys(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/keys/"])
    assert "delete" in paths["/api/keys/{id}/"]
    post = paths["/api/keys/"]["post"]["responses"]
    assert {"201", "400", "401", "409"} <= set(post)
    created = schema["components"]["schemas"]["ApiKeyCreated"]["properties"]
    assert "secret" in created
    assert "secret" not in schema["components"]["schemas"]["ApiKey"]["properties"]


# --- the setting ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_api_keys_per_user_stops_the_process(value):
    result = run([sys.executable, "manage.py", "check"], API_KEYS_PER_USER=value)

    assert result.returncode == 1
    assert result.stderr.startswith("Configuration error: API_KEYS_PER_USER=")


# --- concurrency (PostgreSQL) --------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_creations_never_exceed_the_limit(user, settings):
    settings.API_KEYS_PER_USER = 3
    services.api_key_create(user=user, name="existing")

    outcomes = in_parallel(lambda i: services.api_key_create(user=user, name=f"k{i}"), callers=8)

    made = [o for o in outcomes if isinstance(o, tuple)]
    refused = [o for o in outcomes if isinstance(o, ApiKeyLimitReached)]
    assert (len(made), len(refused)) == (2, 6), outcomes
    assert ApiKey.objects.filter(user=user).live().count() == 3


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_creations_through_the_api_never_exceed_the_limit(user, settings):
    settings.API_KEYS_PER_USER = 2

    outcomes = in_parallel(
        lambda i: bearer_client(user).post(KEYS, {"name": f"k{i}"}, format="json").status_code, callers=8
    )

    assert sorted(outcomes) == [201, 201, *[409] * 6], outcomes
    assert ApiKey.objects.filter(user=user).count() == 2
