"""The /auth/ endpoints through their URLs: every row of the spec's Accounts table."""

import json

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from tests.helpers.asserts import assert_error
from tests.helpers.clients import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-different-long-passphrase-42"
USER_FIELDS = {"id", "login_id", "email", "display_name", "date_joined"}


def post(client, url, data):
    return client.post(url, data, format="json")


def login(client, login_id="alice", password=PASSWORD):
    return post(client, "/auth/login", {"login_id": login_id, "password": password})


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- POST /auth/register ---------------------------------------------------


def test_register_returns_user_and_tokens(api_client):
    response = post(api_client, "/auth/register", {"login_id": "Carol", "password": "a-long-enough-pass-123"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user", "access", "refresh"}
    assert set(body["user"]) == USER_FIELDS
    assert body["user"]["login_id"] == "Carol"
    assert body["user"]["email"] == ""
    assert User.objects.get(login_id="Carol").check_password("a-long-enough-pass-123")


def test_register_stores_optional_profile_fields(api_client):
    response = post(
        api_client,
        "/auth/register",
        {
            "login_id": "carol",
            "password": "a-long-enough-pass-123",
            "display_name": "Carol",
            "email": "Carol@EXAMPLE.com",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["display_name"] == "Carol"
    assert response.json()["user"]["email"] == "Carol@example.com"


def test_register_tokens_authenticate(api_client):
    body = post(
        api_client, "/auth/register", {"login_id": "carol", "password": "a-long-enough-pass-123"}
    ).json()

    response = bearer(body["access"]).get("/auth/me")

    assert response.status_code == 200
    assert response.json()["login_id"] == "carol"


@pytest.mark.parametrize("login_id", ["alice", "ALICE", "Alice"])
def test_register_refuses_login_id_taken_in_any_case(api_client, user, login_id):
    response = post(
        api_client, "/auth/register", {"login_id": login_id, "password": "a-long-enough-pass-123"}
    )

    error = assert_error(response, 409, "conflict")
    assert "login_id" in error["details"]
    assert User.objects.filter(login_id__iexact="alice").count() == 1


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "carol-smith"])
def test_register_refuses_weak_password(api_client, password):
    response = post(
        api_client,
        "/auth/register",
        {"login_id": "carol-smith", "password": password, "email": "c@example.com"},
    )

    error = assert_error(response, 400, "validation_error")
    assert error["details"]["password"]
    assert all(isinstance(message, str) for message in error["details"]["password"])
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, {"login_id", "password"}),
        ({"login_id": "has space", "password": "a-long-enough-pass-123"}, {"login_id"}),
        ({"login_id": "x" * 151, "password": "a-long-enough-pass-123"}, {"login_id"}),
        ({"login_id": "carol", "password": "a-long-enough-pass-123", "email": "not-an-email"}, {"email"}),
        ({"login_id": ["carol"], "password": {"a": 1}}, {"login_id", "password"}),
        ({"login_id": True, "password": None}, {"login_id", "password"}),
    ],
    ids=["empty", "bad-chars", "too-long", "bad-email", "list-and-object", "bool-and-null"],
)
def test_register_validates_fields(api_client, data, fields):
    error = assert_error(post(api_client, "/auth/register", data), 400, "validation_error")

    assert set(error["details"]) == fields
    assert not User.objects.exists()


# --- POST /auth/login ------------------------------------------------------


def test_login_returns_user_and_tokens(api_client, user):
    response = login(api_client)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"user", "access", "refresh"}
    assert body["user"] == {
        "id": user.pk,
        "login_id": "alice",
        "email": "alice@example.com",
        "display_name": "Alice",
        "date_joined": body["user"]["date_joined"],
    }
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_id_matches_in_any_case(api_client, user):
    response = login(api_client, login_id="ALICE")

    assert response.status_code == 200, response.content
    assert response.json()["user"]["id"] == user.pk


def test_login_refuses_wrong_password(api_client, user):
    assert_error(login(api_client, password="wrong-password"), 401, "invalid_credentials")


def test_login_refuses_unknown_login_id(api_client):
    assert_error(login(api_client, login_id="nobody"), 401, "invalid_credentials")


def test_login_refuses_deactivated_user(api_client, make_user):
    make_user("dora", is_active=False)

    assert_error(login(api_client, login_id="dora"), 401, "invalid_credentials")


def test_login_with_integer_login_id_is_a_wrong_type(api_client, make_user):
    make_user("123")

    error = assert_error(login(api_client, login_id=123), 400, "validation_error")

    assert error["details"]["login_id"] == ["Not a valid string."]


@pytest.mark.parametrize("login_id", [[], {}, ["alice"], {"login_id": "alice"}, False, None])
def test_login_refuses_wrong_types(api_client, user, login_id):
    error = assert_error(login(api_client, login_id=login_id), 400, "validation_error")

    assert "login_id" in error["details"]


# --- Tokens of deactivated and deleted users --------------------------------


def test_deactivated_user_cannot_use_access_token(user):
    client = bearer(str(RefreshToken.for_user(user).access_token))
    assert client.get("/auth/me").status_code == 200

    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(client.get("/auth/me"), 401, "token_not_valid")


def test_deactivated_user_cannot_refresh(api_client, user):
    refresh = login(api_client).json()["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(post(api_client, "/auth/token/refresh", {"refresh": refresh}), 401, "token_not_valid")


def test_deleted_user_refresh_token_is_401_not_500(api_client, walletless_user):
    refresh = str(RefreshToken.for_user(walletless_user))
    User.objects.filter(pk=walletless_user.pk).delete()

    assert_error(post(api_client, "/auth/token/refresh", {"refresh": refresh}), 401, "token_not_valid")


def test_deleted_user_access_token_is_refused(walletless_user):
    client = bearer(str(RefreshToken.for_user(walletless_user).access_token))
    User.objects.filter(pk=walletless_user.pk).delete()

    assert_error(client.get("/auth/me"), 401, "token_not_valid")


# --- POST /auth/token/refresh ------------------------------------------------


def test_refresh_rotates_and_old_token_dies(api_client, user):
    old = login(api_client).json()["refresh"]

    response = post(api_client, "/auth/token/refresh", {"refresh": old})

    assert response.status_code == 200, response.content
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != old
    assert bearer(pair["access"]).get("/auth/me").json()["id"] == user.pk
    assert_error(post(api_client, "/auth/token/refresh", {"refresh": old}), 401, "token_not_valid")
    assert post(api_client, "/auth/token/refresh", {"refresh": pair["refresh"]}).status_code == 200


def test_refresh_refuses_an_access_token(api_client, user):
    access = login(api_client).json()["access"]

    assert_error(post(api_client, "/auth/token/refresh", {"refresh": access}), 401, "token_not_valid")


@pytest.mark.parametrize("refresh", ["garbage", "a.b.c", "x" * 4000])
def test_refresh_refuses_garbage(api_client, refresh):
    assert_error(post(api_client, "/auth/token/refresh", {"refresh": refresh}), 401, "token_not_valid")


def test_refresh_requires_the_token(api_client):
    error = assert_error(post(api_client, "/auth/token/refresh", {}), 400, "validation_error")

    assert "refresh" in error["details"]


# --- POST /auth/logout -----------------------------------------------------


def test_logout_kills_the_refresh_token(api_client, user):
    refresh = login(api_client).json()["refresh"]

    response = post(api_client, "/auth/logout", {"refresh": refresh})

    assert response.status_code == 204
    assert response.content == b""
    assert_error(post(api_client, "/auth/token/refresh", {"refresh": refresh}), 401, "token_not_valid")
    assert_error(post(api_client, "/auth/logout", {"refresh": refresh}), 401, "token_not_valid")


def test_logout_leaves_other_sessions_alive(api_client, user):
    phone = login(api_client).json()["refresh"]
    laptop = login(api_client).json()["refresh"]

    post(api_client, "/auth/logout", {"refresh": phone})

    assert post(api_client, "/auth/token/refresh", {"refresh": laptop}).status_code == 200


def test_logout_refuses_garbage(api_client):
    assert_error(post(api_client, "/auth/logout", {"refresh": "garbage"}), 401, "token_not_valid")


# --- GET/PATCH /auth/me ------------------------------------------------------


def test_me_returns_the_user(auth_client, user):
    response = auth_client.get("/auth/me")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert (body["id"], body["login_id"], body["email"]) == (user.pk, "alice", "alice@example.com")


def test_me_without_credentials_is_not_authenticated(api_client):
    response = api_client.get("/auth/me")

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Bearer"])
def test_me_with_bad_bearer_is_refused(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/auth/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"token_not_valid", "not_authenticated"}
    if header != "Bearer":
        assert_error(response, 401, "token_not_valid")


def test_me_with_expired_access_token_is_refused(user, settings):
    token = RefreshToken.for_user(user).access_token
    token.set_exp(lifetime=-__import__("datetime").timedelta(seconds=1))

    assert_error(bearer(str(token)).get("/auth/me"), 401, "token_not_valid")


def test_me_refuses_a_refresh_token_as_bearer(api_client, user):
    refresh = login(api_client).json()["refresh"]

    assert_error(bearer(refresh).get("/auth/me"), 401, "token_not_valid")


def test_patch_me_updates_profile(auth_client, user):
    response = auth_client.patch(
        "/auth/me", {"display_name": "Alice A.", "email": "a@Example.org"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Alice A."
    user.refresh_from_db()
    assert (user.display_name, user.email) == ("Alice A.", "a@example.org")


def test_patch_me_changes_only_given_fields(auth_client, user):
    response = auth_client.patch("/auth/me", {"display_name": "Al"}, format="json")

    assert response.json()["email"] == "alice@example.com"


def test_patch_me_cannot_change_login_id_or_staff(auth_client, user):
    auth_client.patch("/auth/me", {"login_id": "mallory", "is_staff": True, "id": 999}, format="json")

    user.refresh_from_db()
    assert (user.login_id, user.is_staff, user.pk) == ("alice", False, user.pk)


@pytest.mark.parametrize("data", [{"email": "nope"}, {"display_name": ["x"]}, {"display_name": "x" * 151}])
def test_patch_me_validates(auth_client, user, data):
    error = assert_error(auth_client.patch("/auth/me", data, format="json"), 400, "validation_error")

    assert set(error["details"]) == set(data)


def test_me_put_is_method_not_allowed(auth_client):
    assert_error(auth_client.put("/auth/me", {}, format="json"), 405, "method_not_allowed")


# --- POST /auth/password -----------------------------------------------------


def test_password_change_kills_every_earlier_refresh_token(api_client, user):
    phone = login(api_client).json()
    laptop = login(api_client).json()["refresh"]

    response = bearer(phone["access"]).post(
        "/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )

    assert response.status_code == 204, response.content
    for refresh in (phone["refresh"], laptop):
        assert_error(post(api_client, "/auth/token/refresh", {"refresh": refresh}), 401, "token_not_valid")
    assert_error(login(api_client), 401, "invalid_credentials")
    fresh = login(api_client, password=NEW_PASSWORD)
    assert fresh.status_code == 200
    assert post(api_client, "/auth/token/refresh", {"refresh": fresh.json()["refresh"]}).status_code == 200


def test_password_change_refuses_wrong_old_password(auth_client, user):
    response = auth_client.post(
        "/auth/password", {"old_password": "not-it", "new_password": NEW_PASSWORD}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert "old_password" in error["details"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_refuses_weak_new_password(auth_client, user):
    response = auth_client.post(
        "/auth/password", {"old_password": PASSWORD, "new_password": "123"}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert error["details"]["new_password"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_requires_authentication(api_client):
    response = post(api_client, "/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert_error(response, 401, "not_authenticated")


def test_password_change_validates_types(auth_client):
    response = auth_client.post("/auth/password", {"old_password": 1.5, "new_password": []}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert "new_password" in error["details"]


# --- Login ids are one account ignoring case and width (NFKC), on every database ------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("émile", "ÉMILE"),
        ("ÉMILE", "émile"),
        ("ada", "\uff41\uff44\uff41"),  # fullwidth ada
        ("\uff21\uff24\uff21", "ada"),  # fullwidth ADA
        ("straße", "STRASSE"),
        ("e\u0301mile", "émile"),  # decomposed é
    ],
)
def test_register_refuses_login_id_that_is_the_same_account(api_client, first, second):
    assert (
        post(api_client, "/auth/register", {"login_id": first, "password": NEW_PASSWORD}).status_code == 201
    )

    response = post(api_client, "/auth/register", {"login_id": second, "password": NEW_PASSWORD})

    error = assert_error(response, 409, "conflict")
    assert "login_id" in error["details"]
    assert User.objects.count() == 1


def test_register_stores_the_login_id_nfkc_normalised(api_client):
    response = post(api_client, "/auth/register", {"login_id": "\uff21da\u2460", "password": NEW_PASSWORD})

    assert response.status_code == 201, response.content
    assert response.json()["user"]["login_id"] == "Ada1"


@pytest.mark.parametrize(
    "login_id", ["ÉMILE", "Émile", "e\u0301mile", "\uff45\u0301\uff4d\uff49\uff4c\uff45"]
)
def test_login_finds_the_account_ignoring_case_and_width(api_client, make_user, login_id):
    make_user("émile")

    response = login(api_client, login_id=login_id)

    assert response.status_code == 200, response.content
    assert response.json()["user"]["login_id"] == "émile"


def test_register_refuses_login_id_too_long_once_normalised(api_client):
    # 150 characters, but NFKC turns each ligature into three letters.
    response = post(api_client, "/auth/register", {"login_id": "\ufb03" * 150, "password": NEW_PASSWORD})

    error = assert_error(response, 400, "validation_error")
    assert "login_id" in error["details"]


# --- No 500 from any string a client sends (issue 10: lone surrogates) -------


SURROGATE = "\ud800"


def send_json(client, method: str, url: str, data: dict):
    """The body as a client sends it: JSON with ``\\ud800`` escapes (the test client's renderer can't)."""
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


STRING_FIELDS = [
    ("/auth/register", {"login_id": "carol", "password": NEW_PASSWORD}, "login_id"),
    ("/auth/register", {"login_id": "carol", "password": NEW_PASSWORD}, "password"),
    ("/auth/register", {"login_id": "carol", "password": NEW_PASSWORD}, "display_name"),
    ("/auth/register", {"login_id": "carol", "password": NEW_PASSWORD}, "email"),
    ("/auth/login", {"login_id": "alice", "password": PASSWORD}, "login_id"),
    ("/auth/login", {"login_id": "alice", "password": PASSWORD}, "password"),
    ("/auth/token/refresh", {"refresh": "x"}, "refresh"),
    ("/auth/logout", {"refresh": "x"}, "refresh"),
    ("/auth/google", {"id_token": "x"}, "id_token"),
]


@pytest.mark.parametrize("where", ["alone", "inside"])
@pytest.mark.parametrize(("url", "data", "field"), STRING_FIELDS)
def test_public_endpoints_refuse_a_lone_surrogate_as_invalid(api_client, user, url, data, field, where):
    value = SURROGATE if where == "alone" else f"ab{SURROGATE}cd"

    response = send_json(api_client, "post", url, {**data, field: value})

    error = assert_error(response, 400, "validation_error")
    assert field in error["details"]


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("patch", "/auth/me", "display_name"),
        ("patch", "/auth/me", "email"),
        ("post", "/auth/password", "old_password"),
        ("post", "/auth/password", "new_password"),
    ],
)
def test_account_endpoints_refuse_a_lone_surrogate_as_invalid(auth_client, method, url, field):
    data = {"old_password": PASSWORD, "new_password": NEW_PASSWORD} if url == "/auth/password" else {}

    response = send_json(auth_client, method, url, {**data, field: f"x{SURROGATE}"})

    error = assert_error(response, 400, "validation_error")
    assert field in error["details"]


# --- Token responses are never stored by a cache -----------------------------


def test_register_login_and_refresh_responses_are_no_store(api_client, user):
    register = post(api_client, "/auth/register", {"login_id": "carol", "password": NEW_PASSWORD})
    signed_in = login(api_client)
    refreshed = post(api_client, "/auth/token/refresh", {"refresh": signed_in.json()["refresh"]})

    for response in (register, signed_in, refreshed):
        assert response.status_code in (200, 201), response.content
        assert "no-store" in response["Cache-Control"]


# --- The routes: ViewSet actions at the same URLs, in the same schema -----------


def test_auth_routes_and_methods_are_unchanged(api_client):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    auth = {
        (path, method)
        for path, operations in schema["paths"].items()
        if path.startswith("/auth/")
        for method in operations
    }

    # The schema names each route once, with its trailing slash (core.routing: both forms answer).
    assert auth == {
        ("/auth/register/", "post"),
        ("/auth/login/", "post"),
        ("/auth/token/refresh/", "post"),
        ("/auth/logout/", "post"),
        ("/auth/me/", "get"),
        ("/auth/me/", "patch"),
        ("/auth/password/", "post"),
        ("/auth/google/", "post"),
    }
    assert schema["paths"]["/auth/me/"]["get"]["operationId"] == "auth_me_retrieve"
    assert schema["paths"]["/auth/register/"]["post"]["operationId"] == "auth_register_create"


@pytest.mark.parametrize("url", ["/auth/", "/auth", "/auth/register//", "/auth/me/extra"])
def test_auth_urls_beyond_the_routes_are_404(api_client, url):
    assert api_client.post(url, {}, format="json").status_code == 404
