"""With DEBUG off, WhiteNoise serves the static files (the admin's, Swagger UI's) from STATIC_ROOT."""

import re

import pytest
from django.core.management import call_command
from django.test import Client


@pytest.fixture
def collected(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    return tmp_path


def test_admin_assets_are_served_with_debug_off(collected, settings):
    assert settings.DEBUG is False

    response = Client().get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b"".join(response.streaming_content).strip()


def test_assets_are_served_compressed(collected):
    response = Client().get("/static/admin/css/base.css", HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"


def test_missing_asset_is_404(collected):
    assert Client().get("/static/admin/css/no-such-file.css").status_code == 404


async def test_assets_are_served_in_an_async_middleware_chain(collected):
    """Under ASGI the chain is async end to end: WhiteNoise adds no thread hop to API requests."""
    from django.test import AsyncClient

    client = AsyncClient()
    asset = await client.get("/static/admin/css/base.css")
    assert asset.status_code == 200
    assert b"".join(asset.streaming_content).strip()
    missing = await client.get("/static/admin/css/no-such-file.css")
    assert missing.status_code == 404
    assert (await client.get("/healthz")).json() == {"status": "ok"}


def test_whitenoise_takes_the_mode_of_the_chain_it_wraps():
    from asgiref.sync import iscoroutinefunction

    from core.middleware import AsyncWhiteNoiseMiddleware

    async def async_view(request): ...

    def sync_view(request): ...

    assert iscoroutinefunction(AsyncWhiteNoiseMiddleware(async_view))
    assert not iscoroutinefunction(AsyncWhiteNoiseMiddleware(sync_view))


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"', html)


@pytest.mark.django_db
def test_api_docs_page_loads_only_this_projects_assets(collected):
    """Swagger UI comes from the pinned drf-spectacular-sidecar, not a CDN: /api/docs/ works offline."""
    html = Client().get("/api/docs/").content.decode()

    urls = _asset_urls(html)
    assert len(urls) >= 3, html  # the stylesheet, the bundle and the preset at least
    for url in urls:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        response = Client().get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content)
    assert "cdn" not in html.lower()
    assert '"validatorUrl": null' in html  # no badge fetched from swagger.io's online validator
