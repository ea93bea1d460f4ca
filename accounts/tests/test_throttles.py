"""Sign-in and sign-up are rate limited per client address and per login id."""

import pytest

from conftest import PASSWORD
from core.tests.asserts import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _three_per_minute(settings):
    settings.AUTH_THROTTLE_RATE = "3/min"


def login(client, login_id, *, ip="203.0.113.1", password="wrong-password", **extra):
    return client.post(
        "/auth/login", {"login_id": login_id, "password": password}, format="json", REMOTE_ADDR=ip, **extra
    )


def test_login_is_throttled_per_address(api_client, user):
    for login_id in ["a", "b", "c"]:
        assert login(api_client, login_id).status_code == 401

    response = login(api_client, "alice", password=PASSWORD)

    error = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert error["details"] == {"retry_after": retry_after}


def test_login_is_throttled_per_login_id_across_addresses(api_client, user):
    for n in range(3):
        login(api_client, "alice", ip=f"198.51.100.{n}")

    assert_error(login(api_client, "ALICE ", ip="198.51.100.99"), 429, "throttled")


def test_other_login_ids_from_other_addresses_are_not_throttled(api_client, user):
    for n in range(3):
        login(api_client, "alice", ip=f"198.51.100.{n}")

    assert login(api_client, "bob", ip="198.51.100.50").status_code == 401


def test_forwarded_for_header_does_not_escape_the_address_limit(api_client):
    for n in range(3):
        login(api_client, f"user{n}", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    assert_error(login(api_client, "user9", HTTP_X_FORWARDED_FOR="192.0.2.9"), 429, "throttled")


def test_register_is_throttled(api_client):
    for n in range(3):
        api_client.post("/auth/register", {"login_id": f"u{n}", "password": "x"}, format="json")

    response = api_client.post(
        "/auth/register", {"login_id": "carol", "password": "a-long-enough-pass-123"}, format="json"
    )

    assert_error(response, 429, "throttled")


def test_rate_is_read_from_settings_per_request(api_client, settings):
    settings.AUTH_THROTTLE_RATE = "1/min"
    login(api_client, "a")
    assert_error(login(api_client, "b"), 429, "throttled")

    settings.AUTH_THROTTLE_RATE = "100/min"
    assert login(api_client, "c").status_code == 401


def test_login_id_of_any_length_or_character_is_a_safe_cache_key(api_client):
    for login_id in ["x" * 10_000, "with space", "ünïcødé\n"]:
        assert login(api_client, login_id).status_code in (400, 401)
