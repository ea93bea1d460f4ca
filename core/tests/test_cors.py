import pytest

pytestmark = pytest.mark.django_db

SPA = "https://app.example.com"


def test_cors_is_off_by_default(api_client):
    response = api_client.options(
        "/api/categories/", HTTP_ORIGIN=SPA, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_a_configured_single_page_app(api_client, settings):
    settings.CORS_ALLOWED_ORIGINS = [SPA]
    preflight = api_client.options(
        "/api/sessions/",
        HTTP_ORIGIN=SPA,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SPA
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    response = api_client.get("/api/categories/", HTTP_ORIGIN=SPA)
    assert response.headers["access-control-allow-origin"] == SPA
    other = api_client.get("/api/categories/", HTTP_ORIGIN="https://evil.example.com")
    assert "access-control-allow-origin" not in other.headers
