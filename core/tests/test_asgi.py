"""The body cap in front of Django, through a real uvicorn."""

import json

import httpx
import pytest

from tests.helpers.clients import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def chunked(body: bytes, size: int = 7):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_that_fits_reaches_the_view_whole(live_asgi_url, user):
    body = json.dumps({"login_id": "alice", "password": PASSWORD}).encode()
    response = httpx.post(
        f"{live_asgi_url}/auth/login", content=chunked(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["login_id"] == "alice"


def test_a_declared_length_over_the_limit_is_refused_before_the_body(live_asgi_url, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = httpx.post(
        f"{live_asgi_url}/auth/login", content=b"x" * 2048, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": "The request body is too large.",
            "details": {"max_bytes": 1024},
        }
    }


def test_other_requests_pass_untouched(live_asgi_url):
    assert httpx.get(f"{live_asgi_url}/healthz").json() == {"status": "ok"}
