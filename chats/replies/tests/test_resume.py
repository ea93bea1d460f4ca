"""Replies that outlive their connection, on one worker with the in-process log (no Redis):
resume after a dropped connection, stop, the concurrency limit, events that have expired.

The same scenarios across two workers on Redis are in ``test_resume_workers.py``.
"""

import threading
import time

import httpx
import pytest
from django.test import override_settings
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from chats.models import Message
from tests.helpers.money import assert_books_balance, expected_cost
from tests.helpers.streams import events_url, read_events, resume, settled_reply, start_reply
from wallets.models import Hold, Wallet

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = [f"w{i}" for i in range(40)]


def test_a_dropped_reader_resumes_with_last_event_id_and_gets_every_missed_event_once(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply=" ".join(WORDS), chunk_delay=0.02)
    first = start_reply(live_asgi_url, session, headers, deltas=3)
    assert [event["id"] for event in first] == [1, 2, 3, 4]
    message_id = first[0]["data"]["assistant_message_id"]

    rest = resume(live_asgi_url, session, message_id, {**headers, "Last-Event-ID": "4"})

    ids = [event["id"] for event in first + rest]
    assert ids == list(range(1, len(ids) + 1))  # every event once, in order
    assert rest[-1]["event"] == "done"
    text = "".join(event["data"]["content"] for event in first + rest if event["event"] == "delta")
    assert text == " ".join(WORDS)
    reply = settled_reply(session)
    assert (reply.status, reply.content) == ("complete", " ".join(WORDS))
    assert (
        rest[-1]["data"]["cost"] == reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens)
    )
    assert_books_balance(user)


def test_after_zero_replays_the_whole_reply_and_after_the_end_nothing_is_lost(
    live_asgi_url, openai_settings, session, headers
):
    openai_settings.configure(reply="one two three")
    first = start_reply(live_asgi_url, session, headers, deltas=99)
    message_id = first[0]["data"]["assistant_message_id"]

    again = resume(live_asgi_url, session, message_id, headers, params={"after": "0"})

    assert [(e["id"], e["event"]) for e in again] == [(e["id"], e["event"]) for e in first]
    assert resume(live_asgi_url, session, message_id, headers, params={"after": str(first[-1]["id"])}) == []


def test_stop_cuts_the_reply_within_a_chunk_and_charges_what_was_produced(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply=" ".join(WORDS * 3), chunk_delay=0.05)
    url = f"{live_asgi_url}/api/sessions/{session.id}/messages/"
    with (
        httpx.Client(timeout=20) as client,
        client.stream("POST", url, json={"content": "Hi"}, headers=headers) as response,
    ):
        lines = response.iter_lines()
        first = read_events(lines, stop_after_deltas=3)
        message_id = first[0]["data"]["assistant_message_id"]
        stopped = httpx.post(f"{url}{message_id}/stop/", headers=headers, timeout=10)
        assert stopped.status_code == 202
        rest = read_events(lines)

    assert rest[-1]["event"] == "done"
    done = rest[-1]["data"]
    assert done["message"]["status"] == "incomplete"
    assert done["finish_reason"] == "stopped"
    reply = settled_reply(session)
    produced = len(reply.content.split())
    assert 3 <= produced < len(WORDS) * 3
    assert reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) == done["cost"]
    assert Wallet.objects.get(user=user).balance == 100 - reply.cost
    assert openai_settings.wait_until_sync(lambda: openai_settings.last_request.disconnected, timeout=5)
    again = httpx.post(f"{url}{message_id}/stop/", headers=headers, timeout=10)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert_books_balance(user)


def test_a_fourth_concurrent_reply_is_429_and_nothing_is_reserved(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply=" ".join(WORDS), chunk_delay=0.05)
    started = [start_reply(live_asgi_url, session, headers, deltas=1) for _ in range(3)]

    fourth = httpx.post(
        f"{live_asgi_url}/api/sessions/{session.id}/messages/",
        json={"content": "Hi"},
        headers=headers,
        timeout=10,
    )

    assert fourth.status_code == 429
    assert fourth.json()["error"]["code"] == "too_many_replies"
    assert fourth.headers["Retry-After"] == "1"  # worth retrying soon: a reply will end
    assert Message.objects.filter(session=session).count() == 6  # three questions, three replies
    assert Hold.objects.filter(status="open").count() == 3
    for events in started:  # they run on, to their end, and free their slots
        resume(live_asgi_url, session, events[0]["data"]["assistant_message_id"], headers)
    deadline = time.monotonic() + 10
    while Message.objects.filter(status="pending").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert start_reply(live_asgi_url, session, headers, deltas=1)[0]["event"] == "start"
    deadline = time.monotonic() + 10
    while Message.objects.filter(status="pending").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_books_balance(user)


def test_once_the_events_expired_the_stored_reply_is_one_event(
    live_asgi_url, openai_settings, session, headers, user, settings
):
    settings.REPLY_EVENTS_TTL = 1
    openai_settings.configure(reply="short one")
    first = start_reply(live_asgi_url, session, headers, deltas=99)
    message_id = first[0]["data"]["assistant_message_id"]
    time.sleep(1.5)

    (only,) = resume(live_asgi_url, session, message_id, {**headers, "Last-Event-ID": "2"})

    assert only["event"] == "done"
    assert only["data"]["message"]["content"] == "short one"
    assert only["data"]["cost"] == first[-1]["data"]["cost"]
    assert only["data"]["balance"] == Wallet.objects.get(user=user).balance


def test_events_and_stop_of_another_users_reply_are_not_found(
    live_asgi_url, openai_settings, session, headers, other_user
):
    first = start_reply(live_asgi_url, session, headers, deltas=99)
    message_id = first[0]["data"]["assistant_message_id"]
    theirs = {"Authorization": f"Bearer {RefreshToken.for_user(other_user).access_token}"}
    with httpx.Client(base_url=live_asgi_url, timeout=10) as client:
        assert client.get(events_url("", session, message_id), headers=theirs).status_code == 404
        stop = f"/api/sessions/{session.id}/messages/{message_id}/stop/"
        assert client.post(stop, headers=theirs).status_code == 404
        question = Message.objects.get(session=session, role="user").id
        assert client.get(events_url("", session, question), headers=headers).status_code == 404
        bad = client.get(events_url("", session, message_id), headers={**headers, "Last-Event-ID": "x"})
        assert bad.status_code == 400
        assert bad.json()["error"]["details"] == {"after": ["A whole number of events, zero or more."]}
        assert client.get(events_url("", session, message_id)).status_code == 401


def test_a_slow_reader_never_makes_the_upstream_wait(live_asgi_url, openai_settings, session, headers):
    """The reply is written to the log as fast as the upstream sends, read or not."""
    openai_settings.configure(reply=" ".join(WORDS))
    url = f"{live_asgi_url}/api/sessions/{session.id}/messages/"
    done = threading.Event()
    with (
        httpx.Client(timeout=20) as client,
        client.stream("POST", url, json={"content": "Hi"}, headers=headers) as response,
    ):
        lines = response.iter_lines()
        next(lines)  # the reader stalls after its first line...
        assert openai_settings.wait_until_sync(
            lambda: openai_settings.requests and openai_settings.last_request.completed, timeout=5
        )
        done.set()  # ...while the upstream has already sent everything
        rest = list(lines)
    assert done.is_set()
    assert any(line.startswith("event: done") for line in rest)


def test_stopping_a_pending_reply_that_runs_nowhere_is_409(live_asgi_url, session, headers, user):
    """Its worker died (or, without Redis, it runs on another): nobody could be told to stop it."""
    from chats.replies.services import reply_begin

    plan = reply_begin(user=user, session_id=session.id, content="Hi")  # reserved, never started
    stop = f"{live_asgi_url}/api/sessions/{session.id}/messages/{plan.assistant_message_id}/stop/"

    refused = httpx.post(stop, headers=headers, timeout=10)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "reply_unavailable"


REDIS_DOWN = "redis://127.0.0.1:1/0"  # port 1: nothing listens there, as when Redis has stopped


def test_resuming_while_redis_is_down_is_a_503_or_an_error_event_never_a_dropped_connection(
    live_asgi_url, session, headers
):
    """A pending reply's worker cannot be asked: 503 before the answer starts. An ended reply's
    events cannot be read: the 200 has started, so one ``error`` event says why, then the end."""
    pending = baker.make(Message, session=session, role="assistant", status="pending")
    ended = baker.make(Message, session=session, role="assistant", status="complete", content="Hi")

    with override_settings(REDIS_URL=REDIS_DOWN):
        refused = httpx.get(events_url(live_asgi_url, session, pending.id), headers=headers, timeout=10)
        told = resume(live_asgi_url, session, ended.id, headers)

    assert refused.status_code == 503
    assert refused.json()["error"]["details"] == {"dependency": "redis"}
    assert refused.headers["Retry-After"]
    assert [event["event"] for event in told] == ["error"]
    assert told[0]["data"]["error"]["code"] == "service_unavailable"
