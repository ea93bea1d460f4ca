"""Probes for the load balancer, and the API's self-description."""

import pytest
from django.db import OperationalError, connection

from tests.helpers.asserts import assert_error

ACCOUNT_PATHS = [
    "/auth/register/",
    "/auth/login/",
    "/auth/token/refresh/",
    "/auth/logout/",
    "/auth/me/",
    "/auth/password/",
    "/auth/google/",
]


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query here would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_fails(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    # Stands in for a database that is down: the one thing the probe cannot arrange for real.
    monkeypatch.setattr(connection, "cursor", unreachable)

    assert_error(client.get("/readyz"), 503, "not_ready")


@pytest.mark.django_db
def test_openapi_schema_describes_the_accounts_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Parley API"
    assert set(ACCOUNT_PATHS) <= set(schema["paths"])
    login = schema["paths"]["/auth/login/"]["post"]
    assert "200" in login["responses"]
    assert "requestBody" in login
    error_ref = login["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref == "#/components/schemas/Error"
    assert set(schema["components"]["schemas"]["ErrorDetail"]["properties"]) == {"code", "message", "details"}


@pytest.mark.django_db
def test_openapi_schema_defaults_to_yaml(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.django_db
def test_swagger_docs_page_is_served(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert b"/api/schema/" in response.content
