"""The message endpoint's HTTP side: DRF's checks, content types, and clients or sessions that go away
while a reply is being reserved."""

import contextlib
import inspect
import logging
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection, transaction
from model_bakery import baker
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import RefreshToken

from chats.conversations.services import session_delete
from chats.models import ChatSession, Message
from chats.replies import views as reply_views
from chats.replies.services import reply_begin
from core.errors import NotFound
from tests.helpers.concurrency import requires_postgres
from wallets.models import Hold, Wallet


def messages_url(session) -> str:
    return f"/api/sessions/{session.id}/messages/"


def post_json(client, session, content="Hello"):
    return client.post(
        messages_url(session), {"content": content}, format="json", HTTP_ACCEPT="application/json"
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_message_post_refuses_a_body_that_is_not_json(auth_client, session, content_type):
    response = auth_client.generic(
        "POST",
        messages_url(session),
        b'{"content": "Hello"}',
        content_type=content_type,
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 415, response.content
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Message.objects.exists()
    assert not Hold.objects.exists()


def test_message_post_is_throttled_per_user(
    auth_client, other_client, other_user, session, general_category, settings
):
    settings.MESSAGE_THROTTLE_RATE = "2/min"
    assert post_json(auth_client, session).status_code == 201
    assert post_json(auth_client, session).status_code == 201

    refused = post_json(auth_client, session)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert Message.objects.filter(session=session).count() == 4  # nothing stored for the third
    other_session = baker.make(ChatSession, user=other_user, category=general_category)
    assert post_json(other_client, other_session).status_code == 201  # another user has their own count


def test_message_post_checks_authentication_before_the_throttle(api_client, session, settings):
    settings.MESSAGE_THROTTLE_RATE = "1/min"
    for _ in range(3):
        response = post_json(api_client, session)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_unhandled_error_is_logged_with_the_endpoint_name(auth_client, session, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(reply_views, "reply_begin", broken)
    with caplog.at_level(logging.ERROR, logger="core.exceptions"):
        response = post_json(auth_client, session)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert "boom" not in response.content.decode()
    assert "Unhandled error in MessagePostView" in caplog.text


# --- a reservation that another transaction makes slow (PostgreSQL: real row locks) ----------------


@contextlib.contextmanager
def wallet_row_locked(user):
    """Another transaction holds ``user``'s wallet row until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Wallet.objects.select_for_update().get(user=user)
                locked.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    assert locked.wait(timeout=10)
    try:
        yield
    finally:
        release.set()
        thread.join(timeout=20)


def wait_for_lock_waiter(timeout: float = 10.0) -> None:
    """Until some other connection is waiting for a row lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("nothing ever waited for the lock")


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_client_leaving_while_its_reply_is_reserved_gets_its_reply_run_and_settled(
    live_asgi_url, user, session
):
    token = RefreshToken.for_user(user).access_token
    body = b'{"content": "Hello"}'
    request = (
        f"POST {messages_url(session)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    address = urlsplit(live_asgi_url)

    with wallet_row_locked(user):
        client = socket.create_connection((address.hostname, address.port))
        client.sendall(request)
        wait_for_lock_waiter()  # reply_begin is inside its transaction, waiting for the wallet
        client.close()  # the client leaves before the reservation commits
        time.sleep(0.3)  # let the server see the disconnect and cancel the view

    def settled() -> bool:
        return Message.objects.filter(session=session, role="assistant").exclude(status="pending").exists()

    wait_until(settled, timeout=20)
    # Once reserved, a reply runs to its end whoever reads it: stored and charged, nothing held.
    reply = Message.objects.get(session=session, role="assistant")
    assert (reply.status, reply.content) == (Message.Status.COMPLETE, "Echo: Hello")
    assert reply.cost >= 1
    assert not Hold.objects.filter(status=Hold.Status.OPEN).exists()
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held) == (100 - reply.cost, 0)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_session_deleted_while_its_reply_is_reserved_is_not_found(user, session):
    outcome = {}

    def begin():
        try:
            outcome["plan"] = reply_begin(user=user, session_id=session.id, content="Hello")
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    with wallet_row_locked(user):
        thread = threading.Thread(target=begin)
        thread.start()
        wait_for_lock_waiter()  # the question is inserted, the reservation waits for the wallet
        session_delete(session=ChatSession.objects.get(pk=session.pk))
    thread.join(timeout=20)

    assert isinstance(outcome.get("error"), NotFound)
    assert not Message.objects.exists()
    assert not Hold.objects.exists()
    assert Wallet.objects.get(user=user).held == 0


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_session_delete_waits_for_a_reply_that_began_and_takes_its_messages(user, session):
    """The delete gathers messages before a beginning reply commits its own: it gathers again."""
    updated, commit = threading.Event(), threading.Event()

    def beginning_reply():
        try:
            with transaction.atomic():
                Message.objects.create(session=session, role=Message.Role.USER, content="Hello")
                ChatSession.objects.filter(pk=session.pk).update(title="Hello")  # as reply_begin does
                updated.set()
                commit.wait(timeout=20)
        finally:
            connection.close()

    def delete():
        try:
            session_delete(session=ChatSession.objects.get(pk=session.pk))
        finally:
            connection.close()

    replying = threading.Thread(target=beginning_reply)
    replying.start()
    assert updated.wait(timeout=10)
    deleting = threading.Thread(target=delete)
    deleting.start()
    wait_for_lock_waiter()  # the delete waits for the session row
    commit.set()
    replying.join(timeout=20)
    deleting.join(timeout=20)

    assert not ChatSession.objects.filter(pk=session.pk).exists()
    assert not Message.objects.exists()


def test_admit_follows_drfs_dispatch():
    """``AdmittingView.admit`` runs DRF's request steps itself: they must still be the ones it copies."""
    initial = inspect.getsource(APIView.initial)
    steps = [
        "get_format_suffix",
        "perform_content_negotiation",
        "determine_version",
        "perform_authentication",
        "check_permissions",
        "check_throttles",
    ]
    # These calls, in this order, and nothing else before the handler.
    assert re.findall(r"self\.(\w+)\(", initial) == steps
    dispatch = inspect.getsource(APIView.dispatch)
    for step in ("initialize_request", "self.initial(", "handle_exception", "finalize_response"):
        assert step in dispatch
