"""A reply end to end: uvicorn serving the project, the real ``openai`` client, a fake upstream.

Each scenario ends with the wallet audit passing and no hold left open.
"""

import math

import httpx
import pytest

from chats.models import Message
from tests.helpers.money import assert_books_balance, expected_cost
from tests.helpers.streams import post_stream, settled_reply
from wallets.models import LedgerEntry, Wallet
from wallets.services import wallet_adjust

pytestmark = pytest.mark.django_db(transaction=True)


def test_reply_streams_and_charges_reported_usage(live_asgi_url, openai_settings, session, headers, user):
    openai_settings.configure(reply="Hi there, human.", prompt_tokens=700, completion_tokens=400)
    events = post_stream(live_asgi_url, session, headers)

    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    start, done = events[0][1], events[-1][1]
    assert start["user_message"]["content"] == "Hello there"
    assert start["user_message"]["role"] == "user"
    text = "".join(data["content"] for name, data in events if name == "delta")
    assert text == "Hi there, human."
    cost = expected_cost(700, 400)
    assert done["usage"] == {"prompt_tokens": 700, "completion_tokens": 400}
    assert done["cost"] == cost == 2
    assert done["message"]["id"] == start["assistant_message_id"]
    assert done["message"]["status"] == "complete"
    assert done["balance"] == 100 - cost

    reply = Message.objects.get(pk=start["assistant_message_id"])
    assert (reply.content, reply.status, reply.cost) == (text, "complete", cost)
    assert Wallet.objects.get(user=user).balance == 100 - cost
    assert LedgerEntry.objects.filter(wallet__user=user, kind="charge").count() == 1
    sent = openai_settings.last_request.body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][-1] == {"role": "user", "content": "Hello there"}
    assert_books_balance(user)


def test_first_message_titles_the_session(live_asgi_url, openai_settings, session, headers):
    post_stream(live_asgi_url, session, headers, content="Plan a trip to Lisbon")
    session.refresh_from_db()
    assert session.title == "Plan a trip to Lisbon"
    assert session.last_message_at is not None


def test_cut_stream_without_usage_is_charged_by_estimate(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply="word " * 40, include_usage=False)
    done = post_stream(live_asgi_url, session, headers)[-1][1]
    reply = settled_reply(session)
    assert reply.status == "complete"
    # The documented rule: ceil(UTF-8 bytes / 4) per text, plus framing per message.
    assert reply.completion_tokens == math.ceil(len(reply.content.encode()) / 4)
    assert reply.prompt_tokens > 0
    assert done["cost"] == expected_cost(reply.prompt_tokens, reply.completion_tokens) == reply.cost
    assert Wallet.objects.get(user=user).balance == 100 - reply.cost
    assert_books_balance(user)


def test_provider_failure_before_any_token_charges_nothing(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(fail_status=503)
    events = post_stream(live_asgi_url, session, headers)
    assert [name for name, _ in events] == ["start", "error"]
    assert events[-1][1]["error"]["code"] == "llm_unavailable"
    reply = settled_reply(session)
    assert (reply.status, reply.cost, reply.content, reply.finish_reason) == ("failed", 0, "", "error")
    assert Wallet.objects.get(user=user).balance == 100
    assert not LedgerEntry.objects.filter(wallet__user=user, kind="charge").exists()
    assert_books_balance(user)


def test_provider_failure_mid_stream_keeps_and_charges_the_part(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply="one two three four five six", fail_after_chunks=3)
    events = post_stream(live_asgi_url, session, headers)
    names = [name for name, _ in events]
    assert names == ["start", "delta", "delta", "delta", "error"]
    reply = settled_reply(session)
    assert (reply.status, reply.finish_reason) == ("incomplete", "error")
    assert reply.content == "one two three"
    assert reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) >= 1
    assert Wallet.objects.get(user=user).balance == 100 - reply.cost
    assert_books_balance(user)


def test_client_disconnect_leaves_the_reply_running_to_its_end_and_charged_in_full(
    live_asgi_url, openai_settings, session, headers, user
):
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(60)), chunk_delay=0.01)
    events = post_stream(live_asgi_url, session, headers, stop_after_deltas=3)
    assert [name for name, _ in events] == ["start", "delta", "delta", "delta"]

    reply = settled_reply(session)
    assert reply.status == "complete"
    assert reply.content == " ".join(f"w{i}" for i in range(60))
    assert reply.cost == expected_cost(reply.prompt_tokens, reply.completion_tokens) >= 1
    assert Wallet.objects.get(user=user).balance == 100 - reply.cost
    assert openai_settings.last_request.completed
    assert_books_balance(user)


def test_insufficient_funds_is_402_and_nothing_is_stored(
    live_asgi_url, openai_settings, session, headers, user
):
    wallet_adjust(user=user, amount=-100, reason="spent elsewhere", actor=None)
    with httpx.Client(timeout=10) as client:
        response = client.post(
            f"{live_asgi_url}/api/sessions/{session.id}/messages/", json={"content": "hi"}, headers=headers
        )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_funds"
    assert error["details"]["available"] == 0
    assert error["details"]["required"] >= 1
    assert not Message.objects.filter(session=session).exists()
    assert openai_settings.requests == []
    assert_books_balance(user)


def test_json_mode_returns_one_body(live_asgi_url, openai_settings, session, headers, user):
    openai_settings.configure(reply="Short answer.", prompt_tokens=10, completion_tokens=3)
    with httpx.Client(timeout=10) as client:
        response = client.post(
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": "Question?"},
            headers={**headers, "Accept": "application/json"},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_message"]["content"] == "Question?"
    assert body["assistant_message"]["content"] == "Short answer."
    assert body["assistant_message"]["status"] == "complete"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 3}
    assert body["cost"] == 1
    assert body["balance"] == 99
    assert_books_balance(user)


@pytest.mark.parametrize(("upstream", "expected"), [(500, 502), (503, 503)])
def test_json_mode_provider_failure_is_502_or_503(
    live_asgi_url, openai_settings, session, headers, user, upstream, expected
):
    openai_settings.configure(fail_status=upstream)
    with httpx.Client(timeout=10) as client:
        response = client.post(
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": "Question?"},
            headers={**headers, "Accept": "application/json"},
        )
    assert response.status_code == expected
    assert response.json()["error"]["code"] == "llm_unavailable"
    assert settled_reply(session).status == "failed"
    assert Wallet.objects.get(user=user).balance == 100
    assert_books_balance(user)


def test_failed_replies_are_left_out_of_the_next_prompt(live_asgi_url, openai_settings, session, headers):
    openai_settings.configure(fail_status=500)
    post_stream(live_asgi_url, session, headers, content="first")
    openai_settings.configure(reply="ok")
    post_stream(live_asgi_url, session, headers, content="second")
    sent = [m["content"] for m in openai_settings.last_request.body["messages"][1:]]
    assert sent == ["first", "second"]


def test_echo_provider_works_offline(live_asgi_url, session, headers, user):
    events = post_stream(live_asgi_url, session, headers, content="ping")
    done = events[-1][1]
    assert done["message"]["status"] == "complete"
    assert "ping" in done["message"]["content"]
    assert done["balance"] == 100 - done["cost"]
    assert_books_balance(user)


def test_a_wallet_that_pays_for_part_of_a_reply_gets_a_shorter_one_that_says_why_it_ended(
    live_asgi_url, openai_settings, session, headers, user, settings
):
    wallet_adjust(user=user, amount=-99, reason="spent elsewhere", actor=None)  # one credit left
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(3000)))

    events = post_stream(live_asgi_url, session, headers)

    bound = openai_settings.last_request.body["max_tokens"]
    assert settings.MIN_REPLY_TOKENS <= bound < settings.LLM_MAX_TOKENS
    name, done = events[-1]
    assert (name, done["finish_reason"], done["message"]["finish_reason"]) == ("done", "length", "length")
    assert done["usage"]["completion_tokens"] <= bound
    reply = settled_reply(session)
    assert (reply.status, reply.finish_reason, reply.cost) == ("complete", "length", 1)
    assert Wallet.objects.get(user=user).balance == 0
    assert_books_balance(user)


def test_a_reply_that_ends_on_its_own_says_stop(live_asgi_url, openai_settings, session, headers):
    openai_settings.configure(reply="Short and done.")
    name, done = post_stream(live_asgi_url, session, headers)[-1]
    assert (name, done["finish_reason"]) == ("done", "stop")
    assert settled_reply(session).finish_reason == "stop"


def test_an_upstream_refusal_is_the_models_failure_to_a_chat_user(
    live_asgi_url, openai_settings, session, headers
):
    """The request was Parley's, not the user's: the upstream's words are not passed on."""
    openai_settings.configure(fail_status=400, fail_message="secret operator detail")
    events = post_stream(live_asgi_url, session, headers)
    name, error = events[-1]
    assert (name, error["error"]["code"]) == ("error", "llm_unavailable")
    assert error["error"]["details"]["upstream_status"] == 400
    assert "secret" not in str(events)
    assert settled_reply(session).status == "failed"


def test_a_reply_cut_at_llm_max_tokens_says_length(
    live_asgi_url, openai_settings, session, headers, settings
):
    settings.LLM_MAX_TOKENS = 5
    openai_settings.configure(reply=" ".join(f"w{i}" for i in range(50)))
    name, done = post_stream(live_asgi_url, session, headers)[-1]
    assert (name, done["finish_reason"], done["message"]["status"]) == ("done", "length", "complete")
    assert done["usage"]["completion_tokens"] <= 5
    assert settled_reply(session).finish_reason == "length"
