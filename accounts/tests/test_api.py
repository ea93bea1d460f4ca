import pytest

pytestmark = pytest.mark.django_db


def test_register_returns_user_and_tokens(api_client):
    response = api_client.post(
        "/auth/register", {"login_id": "Carol", "password": "a-long-enough-pass-123"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["login_id"] == "Carol"
    assert set(body) == {"user", "access", "refresh"}
