"""Every error of every endpoint has the spec's shape; none is a 500 the client caused."""

import json

import pytest
from rest_framework.test import APIClient

from tests.helpers.asserts import assert_error

pytestmark = pytest.mark.django_db

LEAK = "secret internals"


def raw_post(client, url, body: bytes | str, content_type="application/json", **extra):
    return client.generic("POST", url, body, content_type=content_type, **extra)


# --- Bodies the client got wrong ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['{"login_id": "alice",', "{'login_id': 'alice'}", "not json", '{"a": NaN}', b"\xff\xfe{}"],
    ids=["truncated", "single-quotes", "bare-words", "nan", "not-utf8"],
)
def test_malformed_json_is_a_validation_error(api_client, body):
    error = assert_error(raw_post(api_client, "/auth/login", body), 400, "validation_error")

    assert "JSON" in error["message"] or "json" in error["message"].lower()


def test_deeply_nested_json_is_a_validation_error_not_a_crash(api_client):
    body = "[" * 100_000 + "]" * 100_000

    assert_error(raw_post(api_client, "/auth/login", body), 400, "validation_error")


@pytest.mark.parametrize("body", [[], ["alice"], "alice", 42, None])
def test_json_that_is_not_an_object_is_a_validation_error(api_client, body):
    error = assert_error(raw_post(api_client, "/auth/login", json.dumps(body)), 400, "validation_error")

    assert error["details"]


def test_empty_body_names_the_missing_fields(api_client):
    error = assert_error(raw_post(api_client, "/auth/login", b""), 400, "validation_error")

    assert set(error["details"]) == {"login_id", "password"}
    assert error["details"]["login_id"] == ["This field is required."]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("login_id=alice&password=x", "application/x-www-form-urlencoded"), ("alice", "text/plain")],
)
def test_bodies_that_are_not_json_are_unsupported(api_client, body, content_type):
    assert_error(raw_post(api_client, "/auth/login", body, content_type), 415, "unsupported_media_type")


def test_oversize_body_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"login_id": "alice", "password": "x" * 2000})

    error = assert_error(raw_post(api_client, "/auth/login", body), 413, "payload_too_large")

    assert error["details"] == {"max_bytes": 1024}


def test_oversize_body_on_authenticated_endpoint_is_413(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"display_name": "x" * 2000})

    assert_error(
        auth_client.generic("PATCH", "/auth/me", body, content_type="application/json"),
        413,
        "payload_too_large",
    )


def test_body_just_under_the_limit_is_read(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"login_id": "nobody", "password": "x" * 100, "ignored": "x" * 850})

    assert_error(raw_post(api_client, "/auth/login", body), 401, "invalid_credentials")


def test_client_accepting_only_html_gets_a_json_406(api_client):
    assert_error(api_client.get("/auth/me", HTTP_ACCEPT="text/html"), 406, "not_acceptable")


def test_browser_accept_header_gets_json(api_client):
    response = api_client.get("/auth/me", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")

    assert_error(response, 401, "not_authenticated")


# --- Unknown URLs and methods ------------------------------------------------


@pytest.mark.parametrize("url", ["/api/xyz", "/api/xyz/", "/auth/xyz", "/auth/login/extra", "/api/"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_api_urls_are_json_404(api_client, url, method):
    response = api_client.generic(method, url)

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(("method", "url"), [("GET", "/auth/login"), ("DELETE", "/auth/register")])
def test_wrong_method_is_405_in_the_error_shape(api_client, method, url):
    response = api_client.generic(method, url)

    error = assert_error(response, 405, "method_not_allowed")
    assert method in error["message"]
    assert "POST" in response["Allow"]


# --- Failures of the server itself -------------------------------------------


@pytest.fixture
def crashing_client():
    """A client that returns the 500 response instead of re-raising the view's exception."""
    return APIClient(raise_request_exception=False)


@pytest.mark.urls("core.tests.urls")
@pytest.mark.parametrize("url", ["/api/test-raise/boom", "/api/test-boom/plain", "/auth/test-boom/plain"])
def test_unexpected_exception_is_json_500_without_internals(crashing_client, url, caplog):
    response = crashing_client.get(url)

    error = assert_error(response, 500, "server_error")
    assert LEAK not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert error["details"] == {}
    assert any(LEAK in str(record.exc_info) for record in caplog.records if record.exc_info)


@pytest.mark.urls("core.tests.urls")
def test_unexpected_exception_elsewhere_keeps_django_page(crashing_client):
    response = crashing_client.get("/elsewhere/test-boom")

    assert response.status_code == 500
    assert LEAK not in response.content.decode()


@pytest.mark.urls("core.tests.urls")
@pytest.mark.parametrize(
    ("kind", "status", "code", "details"),
    [
        ("django-validation", 400, "validation_error", {"title": ["Too long."]}),
        ("django-validation-plain", 400, "validation_error", {"non_field_errors": ["Nope."]}),
        ("django-permission", 403, "permission_denied", {}),
        ("http404", 404, "not_found", {}),
        ("domain", 409, "conflict", {"id": 7}),
        ("token-error", 401, "token_not_valid", {}),
        ("nested", 400, "validation_error", {"items": [{"name": ["Bad."]}, {}], "n": ["Wrong."]}),
    ],
)
def test_django_and_domain_exceptions_in_api_views_get_the_shape(api_client, kind, status, code, details):
    response = api_client.get(f"/api/test-raise/{kind}")

    error = assert_error(response, status, code)
    assert error["details"] == details
    assert LEAK not in response.content.decode()


@pytest.mark.urls("core.tests.urls")
def test_oversize_body_in_a_plain_api_view_is_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = raw_post(api_client, "/api/test-body", "x" * 2000)

    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_bytes": 1024}
    assert raw_post(api_client, "/api/test-body", "x" * 1000).json() == {"bytes": 1000}


# --- The same answers with DEBUG on (`make run`) -------------------------------
# With DEBUG on, Django skips handler404/handler500/handler400 and renders its HTML technical
# pages; under /api/ and /auth/ the client must still get the error shape.


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("url", ["/api/xyz", "/api/xyz/", "/auth/xyz", "/auth/login/extra", "/api/"])
def test_unknown_api_urls_are_json_404_in_every_mode(api_client, debug, url):
    response = api_client.get(url)

    assert_error(response, 404, "not_found")


def test_unknown_url_elsewhere_keeps_django_page_in_every_mode(client, debug):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_missing_trailing_slash_is_served_not_redirected_in_every_mode(auth_client, debug):
    """It was a 301 to ``/api/wallet/`` (core/routing.py: every API route takes both spellings)."""
    response = auth_client.get("/api/wallet")

    assert response.status_code == 200, response.content
    assert response.json() == auth_client.get("/api/wallet/").json()


@pytest.mark.urls("core.tests.urls")
@pytest.mark.parametrize("url", ["/api/test-boom/plain", "/auth/test-boom/plain"])
def test_unexpected_exception_in_a_plain_view_is_json_500_in_every_mode(crashing_client, debug, url):
    response = crashing_client.get(url)

    assert_error(response, 500, "server_error")
    assert LEAK not in response.content.decode()


@pytest.mark.urls("core.tests.urls")
def test_oversize_body_in_a_plain_api_view_is_413_in_every_mode(api_client, debug, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = raw_post(api_client, "/api/test-body", "x" * 2000)

    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("url", ["/api/xyz", "/auth/login"])
def test_disallowed_host_is_a_json_400_in_every_mode(client, debug, url):
    assert_error(client.get(url, HTTP_HOST="evil.example.com"), 400, "bad_request")


async def test_unknown_api_url_is_json_404_under_asgi_with_debug_on(settings):
    """The ASGI chain is async end to end: the middleware's async path."""
    from django.test import AsyncClient

    settings.DEBUG = True

    response = await AsyncClient().get("/api/xyz/")

    assert_error(response, 404, "not_found")
