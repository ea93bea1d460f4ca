"""``GET /metrics``: off without ``METRICS_TOKEN``, a bearer token with it, and counts that are right.

The counts across several worker processes (``PROMETHEUS_MULTIPROC_DIR``) are tested with two real
uvicorn workers in ``tests/test_metrics_workers.py``.
"""

import pytest
from django.test import AsyncClient, override_settings
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-me-9f2c"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a scrape (0 when it is not there yet)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_are_off_without_a_token(client):
    with override_settings(METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_metrics_take_the_token_as_a_bearer_token_and_nothing_else(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    with override_settings(METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@override_settings(METRICS_TOKEN=TOKEN)
def test_requests_are_counted_by_route_pattern_method_and_status(client, db):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    client.get("/nowhere/at/all")
    client.post("/healthz")

    after = scrape(client)

    counted = "parley_http_requests_total"
    assert (
        sample(after, counted, route="healthz", method="GET", status="200")
        - sample(before, counted, route="healthz", method="GET", status="200")
        == 3
    )
    assert (
        sample(after, counted, route="unmatched", method="GET", status="404")
        - sample(before, counted, route="unmatched", method="GET", status="404")
        == 1
    )
    assert (
        sample(after, counted, route="healthz", method="POST", status="405")
        - sample(before, counted, route="healthz", method="POST", status="405")
        == 1
    )


@override_settings(METRICS_TOKEN=TOKEN)
async def test_a_request_through_the_async_chain_is_counted_too():
    client = AsyncClient()
    before = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).content.decode()

    await client.get("/healthz")

    after = (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).content.decode()
    name = "parley_http_requests_total"
    assert sample(after, name, route="healthz", method="GET", status="200") == 1 + sample(
        before, name, route="healthz", method="GET", status="200"
    )
