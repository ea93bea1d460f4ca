"""Assertions on the one error shape every endpoint answers with."""

from typing import Any


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The response is ``{"error": {"code", "message", "details"}}`` with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error
