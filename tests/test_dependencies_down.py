"""A dependency that does not answer is a 503 the client may retry, never a 500.

Redis "down" is a real Redis URL where nothing listens (the connection is refused), as when the
server has stopped; the throttles' cache and the reply slots both use it.
"""

import pytest
from django.test import override_settings
from model_bakery import baker

from chats.models import ChatSession, Message

DOWN = "redis://127.0.0.1:1/0"  # port 1: nothing listens there

REDIS_DOWN = override_settings(
    REDIS_URL=DOWN,
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DOWN}},
)

pytestmark = pytest.mark.django_db


def assert_503_naming(response, dependency: str) -> None:
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("service_unavailable", {"dependency": dependency})
    assert int(response["Retry-After"]) >= 1


@REDIS_DOWN
def test_login_with_redis_down_is_a_503_to_retry(api_client, user):
    response = api_client.post("/auth/login/", {"login_id": user.login_id, "password": "x"}, format="json")
    assert_503_naming(response, "redis")


@REDIS_DOWN
def test_a_new_message_with_redis_down_is_a_503_and_nothing_is_stored(auth_client, user, general_category):
    session = baker.make(ChatSession, user=user, category=general_category)
    response = auth_client.post(
        f"/api/sessions/{session.id}/messages/",
        {"content": "Hi"},
        format="json",
        HTTP_ACCEPT="application/json",
    )
    assert_503_naming(response, "redis")
    assert not Message.objects.filter(session=session).exists()


@REDIS_DOWN
def test_readyz_names_redis_when_it_does_not_answer(api_client):
    response = api_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["details"] == {"dependency": "redis"}
    assert int(response["Retry-After"]) >= 1  # a load balancer may ask again then


def test_readyz_without_redis_checks_the_database(api_client):
    assert api_client.get("/readyz").json() == {"status": "ok", "database": "ok"}


@override_settings(REDIS_URL="redis://127.0.0.1:6379/14")
def test_readyz_pings_redis_when_it_is_configured(api_client):
    assert api_client.get("/readyz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
