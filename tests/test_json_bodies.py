"""Every JSON body is written the one way DRF's renderer writes the API's answers: compact (no space
after ``,`` or ``:``, no newline) and UTF-8 (``é``, not ``\\u00e9``), including the bodies built
outside DRF (core.responses.JsonResponse): the stop endpoint's 202, the JSON reply, the error pages,
/v1/'s answers and the ASGI layer's 413."""

import json

import httpx
import pytest
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from chats.models import ChatSession, Message
from chats.replies import sse
from tests.helpers.streams import read_events

WORDS = " ".join(f"w{i}" for i in range(60))


def assert_compact(raw: bytes) -> None:
    """``raw`` is byte for byte what DRF's JSONRenderer would write for the same value."""
    assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode(), raw[:300]
    assert b"\n" not in raw


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


@pytest.fixture
def headers(user):
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


@pytest.mark.django_db(transaction=True)
def test_the_stop_endpoints_202_and_the_stream_are_compact(live_asgi_url, settings, session, headers):
    settings.ECHO_TOKEN_DELAY_MS = 20  # the echo reply runs long enough to be stopped
    url = f"{live_asgi_url}/api/sessions/{session.id}/messages/"
    with (
        httpx.Client(timeout=20) as client,
        client.stream("POST", url, json={"content": WORDS}, headers=headers) as response,
    ):
        lines = response.iter_lines()
        data_lines = []
        for line in lines:
            if line.startswith("data: "):
                data_lines.append(line.removeprefix("data: "))
            if len(data_lines) == 3:
                break
        message_id = json.loads(data_lines[0])["assistant_message_id"]
        stopped = httpx.post(f"{url}{message_id}/stop/", headers=headers, timeout=10)
        rest = read_events(lines)

    assert stopped.status_code == 202
    assert stopped.json() == {"id": message_id, "status": "stopping"}
    assert_compact(stopped.content)
    assert rest[-1]["event"] == "done"
    for data in data_lines:
        assert_compact(data.encode())


@pytest.mark.django_db
def test_the_json_reply_is_compact_and_utf8(auth_client, session):
    response = auth_client.post(
        f"/api/sessions/{session.id}/messages/",
        {"content": "Grüße, café"},
        format="json",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["user_message"]["content"] == "Grüße, café"
    assert "café".encode() in response.content
    assert_compact(response.content)


@pytest.mark.django_db
def test_a_stored_reply_resent_once_its_events_expired_is_compact(user, session):
    reply = baker.make(
        Message, session=session, role="assistant", status="complete", content="Grüße", completion_tokens=2
    )

    frame = sse._stored_reply_frame(reply)

    [data] = [line for line in frame.decode().splitlines() if line.startswith("data: ")]
    assert json.loads(data.removeprefix("data: "))["message"]["content"] == "Grüße"
    assert b'":' in frame and b'": ' not in frame and b", " not in frame


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/sessions/{id}/export/?format=nope", 400),
        ("GET", "/api/sessions/not-a-session/export/", 404),
        ("GET", "/api/sessions/{id}/export/?format=json", 200),
        ("GET", "/api/export/", 200),
        ("POST", "/api/export/", 405),
        ("GET", "/api/no-such-thing/", 404),
        ("GET", "/api/sessions/{id}/messages/{id}/stop/", 405),
        ("POST", "/api/sessions/{id}/messages/{id}/stop/", 404),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
        ("POST", "/v1/chat/completions", 401),
        ("GET", "/v1/no-such-thing", 404),
    ],
)
def test_exports_errors_and_plain_views_are_compact(auth_client, session, method, path, status):
    response = auth_client.generic(method, path.replace("{id}", str(session.id)))

    assert response.status_code == status, response.content
    assert_compact(response.getvalue())


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/sessions/{id}/exports/", "/api/sessions/{id}/messages/{id}/stop/"])
def test_error_pages_are_compact_with_debug_on_as_make_run_serves(auth_client, session, settings, path):
    """With DEBUG on, Django's HTML pages are turned into JSON (core.middleware) by the same views."""
    settings.DEBUG = True

    response = auth_client.get(path.replace("{id}", str(session.id)))

    assert response.status_code in (404, 405)
    assert response.json()["error"]["code"] in ("not_found", "method_not_allowed")
    assert_compact(response.content)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/"),
        ("GET", "/api/sessions/{id}/"),
        ("GET", "/api/wallet/"),
        ("GET", "/auth/me"),
        ("OPTIONS", "/api/sessions/"),
        ("DELETE", "/api/keys/{id}/"),  # an error: not one of the caller's keys
    ],
)
def test_drf_answers_stay_compact_when_the_client_asks_for_indentation(auth_client, session, method, path):
    """DRF's renderer honours ``Accept: application/json; indent=4``; the API's does not."""
    response = auth_client.generic(
        method, path.replace("{id}", str(session.id)), HTTP_ACCEPT="application/json; indent=4"
    )

    assert response.status_code in (200, 404), response.content
    assert_compact(response.content)


@pytest.mark.django_db
def test_the_export_of_a_session_without_a_token_is_compact(api_client, session):
    response = api_client.get(f"/api/sessions/{session.id}/export/?format=markdown")

    assert response.status_code == 401
    assert_compact(response.content)


@pytest.mark.django_db(transaction=True)
def test_a_body_over_the_limit_refused_before_django_is_compact(live_asgi_url, settings, headers):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024

    response = httpx.post(f"{live_asgi_url}/api/sessions/", content=b"x" * 2048, headers=headers, timeout=10)

    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_bytes": 1024}
    assert_compact(response.content)
