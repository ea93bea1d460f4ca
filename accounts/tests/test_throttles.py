"""Sign-in and sign-up are rate limited per client address and per login id."""

import json

import pytest

from tests.helpers.asserts import assert_error
from tests.helpers.clients import PASSWORD, bearer_client

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


# --- Lone surrogates and other spellings of a login id -----------------------


def send_login(client, body: str, ip: str = "203.0.113.1"):
    return client.post("/auth/login", body, content_type="application/json", REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/auth/login", "/auth/register"])
def test_lone_surrogate_login_id_is_a_400_not_a_500(api_client, url):
    body = json.dumps({"login_id": "\ud800", "password": "a-long-enough-pass-123"})

    response = api_client.post(url, body, content_type="application/json")

    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("url", ["/auth/login", "/auth/register"])
def test_lone_surrogate_login_id_over_the_rate_is_a_429_not_a_500(api_client, url):
    body = json.dumps({"login_id": "x\ud800", "password": "a-long-enough-pass-123"})
    for n in range(3):
        api_client.post(url, body, content_type="application/json", REMOTE_ADDR=f"198.51.100.{n}")

    response = api_client.post(url, body, content_type="application/json", REMOTE_ADDR="198.51.100.9")

    assert_error(response, 429, "throttled")


def test_fullwidth_and_accented_spellings_share_one_login_id_limit(api_client, user):
    for n, login_id in enumerate(["émile", "ÉMILE", "\uff45\u0301\uff4d\uff49\uff4c\uff45"]):
        login(api_client, login_id, ip=f"198.51.100.{n}")

    assert_error(login(api_client, "Émile", ip="198.51.100.99"), 429, "throttled")


# --- POST /auth/password: per account and per address ------------------------


def change_password(client, *, ip="203.0.113.1", old="wrong-password"):
    return client.post(
        "/auth/password",
        {"old_password": old, "new_password": "a-long-enough-pass-123"},
        format="json",
        REMOTE_ADDR=ip,
    )


def test_password_change_is_throttled_per_account_across_addresses(auth_client, user):
    for n in range(3):
        assert change_password(auth_client, ip=f"198.51.100.{n}").status_code == 400

    response = change_password(auth_client, ip="198.51.100.99", old=PASSWORD)

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_is_throttled_per_address_across_accounts(make_user):
    clients = [bearer_client(make_user(f"user{n}")) for n in range(4)]
    for client in clients[:3]:
        assert change_password(client).status_code == 400

    assert_error(change_password(clients[3]), 429, "throttled")
    assert change_password(clients[3], ip="203.0.113.2").status_code == 400


def test_password_change_limit_is_apart_from_the_sign_in_limit(auth_client, api_client, user):
    for login_id in ["a", "b", "c"]:
        login(api_client, login_id)

    assert change_password(auth_client).status_code == 400


# --- /admin/login/: failed logins per address and per login id ---------------

ADMIN_LOGIN = "/admin/login/"


def admin_login(client, login_id, *, password="wrong-password", ip="203.0.113.1"):
    return client.post(ADMIN_LOGIN, {"username": login_id, "password": password}, REMOTE_ADDR=ip)


def test_admin_login_is_throttled_per_address_after_failures(client, staff_user):
    for login_id in ["a", "b", "c"]:
        assert admin_login(client, login_id).status_code == 200  # the form, with its error

    response = admin_login(client, "staff", password=PASSWORD)

    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert 0 < int(response["Retry-After"]) <= 60
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_admin_login_is_throttled_per_login_id_across_addresses(client, staff_user):
    for n in range(3):
        admin_login(client, "staff", ip=f"198.51.100.{n}")

    assert admin_login(client, "STAFF", password=PASSWORD, ip="198.51.100.99").status_code == 429
    assert admin_login(client, "someone-else", ip="198.51.100.98").status_code == 200


def test_admin_login_counts_only_failures(client, staff_user):
    for _ in range(5):
        response = admin_login(client, "staff", password=PASSWORD)
        assert response.status_code == 302
        client.logout()

    assert admin_login(client, "staff").status_code == 200


def test_admin_login_page_still_shows_when_over_the_limit(client):
    for login_id in ["a", "b", "c"]:
        admin_login(client, login_id)

    assert client.get(ADMIN_LOGIN).status_code == 200


def test_admin_login_limit_uses_the_configured_rate(client, settings):
    settings.AUTH_THROTTLE_RATE = "1/min"
    admin_login(client, "a")

    assert admin_login(client, "b").status_code == 429
