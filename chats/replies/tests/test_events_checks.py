"""``GET …/messages/{id}/events/`` checks who asks before what they ask for: 401, then 404, then 400."""

import pytest
from rest_framework.test import APIClient

from tests.helpers.asserts import assert_error

pytestmark = pytest.mark.django_db

BAD_AFTER = {"after": ["A whole number of events, zero or more."]}


@pytest.fixture
def reply_id(auth_client, session) -> str:
    """A finished reply of the session, made as a client makes one (the echo provider answers)."""
    response = auth_client.post(
        f"/api/sessions/{session.id}/messages/",
        {"content": "Hello"},
        format="json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()["assistant_message"]["id"]


def events(client, session, reply_id, **extra):
    return client.get(f"/api/sessions/{session.id}/messages/{reply_id}/events/", **extra)


@pytest.mark.parametrize(
    "bad", [{"data": {"after": "x"}}, {"data": {"after": "-1"}}, {"HTTP_LAST_EVENT_ID": "x"}]
)
def test_a_bad_after_without_credentials_is_401(session, reply_id, bad):
    response = events(APIClient(), session, reply_id, **bad)

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_bad_after_with_a_token_that_is_not_valid_is_401(session, reply_id):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert_error(events(client, session, reply_id, data={"after": "x"}), 401, "token_not_valid")


def test_a_bad_after_on_someone_elses_reply_is_404(other_client, session, reply_id):
    assert_error(events(other_client, session, reply_id, data={"after": "x"}), 404, "not_found")


@pytest.mark.parametrize(
    "bad", [{"data": {"after": "x"}}, {"data": {"after": "1" * 10}}, {"HTTP_LAST_EVENT_ID": "x"}]
)
def test_a_bad_after_with_a_token_is_400(auth_client, session, reply_id, bad):
    error = assert_error(events(auth_client, session, reply_id, **bad), 400, "validation_error")

    assert error["details"] == BAD_AFTER
