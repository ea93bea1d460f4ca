"""``/``: a small JSON index where there used to be a 404 (with DEBUG, Django's list of every URL
pattern), and the admin's "View site" link, which led there, now leads to the API's docs."""

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.django_db
def test_the_index_names_the_api_and_links_its_docs(client, debug):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "name": "Parley",
        "version": settings.VERSION,
        "docs": "http://testserver/api/docs/",
        "schema": "http://testserver/api/schema/",
        "models": "http://testserver/v1/models",
    }


@pytest.mark.django_db
def test_the_index_links_lead_somewhere(client):
    links = client.get("/").json()

    assert client.get(links["docs"]).status_code == 200
    assert client.get(links["schema"]).status_code == 200
    assert client.get(links["models"]).status_code == 401  # there, but for programs with a key


def test_the_index_and_the_schema_say_the_same_version():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert schema["info"]["version"] == settings.VERSION


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/healthz", "/readyz"])
def test_the_index_and_probes_only_read(client, url):
    """Any other method is a 405 that says what is allowed (Schemathesis holds the probes to it)."""
    response = client.post(url)

    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_the_admins_view_site_link_leads_to_the_api_docs(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/admin/").content.decode()

    assert '<a href="/api/docs/">View site</a>' in page
