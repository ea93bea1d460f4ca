"""Branches: a regenerated reply beside the first, a question edited from an earlier reply,
the history and the prompt following one branch, and the migration of older conversations."""

import uuid
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from model_bakery import baker
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from chats.models import ChatSession, Message
from tests.helpers.money import assert_books_balance
from tests.helpers.streams import sse_events
from wallets.models import LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_asgi_url, user):
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}
    with httpx.Client(base_url=live_asgi_url, headers=headers, timeout=10) as client:
        yield client


JSON = {"Accept": "application/json"}


def ask(client, session, content, **extra):
    response = client.post(
        f"/api/sessions/{session.id}/messages/", json={"content": content, **extra}, headers=JSON
    )
    assert response.status_code == 201, response.text
    return response.json()


def regenerate(client, session, reply_id, headers=JSON):
    return client.post(f"/api/sessions/{session.id}/messages/{reply_id}/regenerate/", headers=headers)


def history(client, session, leaf=None):
    query = f"?leaf={leaf}" if leaf else ""
    response = client.get(f"/api/sessions/{session.id}/messages/{query}")
    assert response.status_code == 200, response.text
    return [(m["role"], m["content"]) for m in response.json()["results"]]


def sent(fake) -> list[tuple[str, str]]:
    """What the upstream received, the system prompt left out."""
    return [(m["role"], m["content"]) for m in fake.last_request.body["messages"] if m["role"] != "system"]


def test_regenerated_reply_is_a_billed_sibling_and_the_history_follows_it(
    client, openai_settings, session, user
):
    openai_settings.configure(reply="first answer")
    one = ask(client, session, "Q1")
    two = ask(client, session, "Q2")
    openai_settings.configure(reply="second answer")

    again = regenerate(client, session, one["assistant_message"]["id"])

    assert again.status_code == 201, again.text
    body = again.json()
    assert body["user_message"]["id"] == one["user_message"]["id"]
    assert body["assistant_message"]["parent_id"] == one["user_message"]["id"]
    assert one["assistant_message"]["parent_id"] == one["user_message"]["id"]
    assert body["assistant_message"]["content"] == "second answer"
    # Exactly the branch: the question, nothing of the first answer or of Q2.
    assert sent(openai_settings) == [("user", "Q1")]
    # Billed like any reply: a third charge.
    assert body["cost"] > 0
    assert LedgerEntry.objects.filter(wallet__user=user, kind="charge").count() == 3
    assert Message.objects.filter(session=session).count() == 5  # the earlier answer is kept
    session.refresh_from_db()
    assert session.message_count == 5

    assert history(client, session) == [("user", "Q1"), ("assistant", "second answer")]
    assert history(client, session, leaf=two["assistant_message"]["id"]) == [
        ("user", "Q1"),
        ("assistant", "first answer"),
        ("user", "Q2"),
        ("assistant", "first answer"),
    ]
    # The next question continues the newest branch.
    ask(client, session, "Q3")
    assert sent(openai_settings) == [("user", "Q1"), ("assistant", "second answer"), ("user", "Q3")]
    assert_books_balance(user)


def test_regenerate_streams_like_a_message(client, openai_settings, session, user):
    openai_settings.configure(reply="once")
    first = ask(client, session, "Q1")
    openai_settings.configure(reply="twice")
    with client.stream(
        "POST", f"/api/sessions/{session.id}/messages/{first['assistant_message']['id']}/regenerate/"
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert events[0][0] == "start" and events[-1][0] == "done"
    assert events[0][1]["user_message"]["id"] == first["user_message"]["id"]
    assert events[-1][1]["message"]["content"] == "twice"
    assert sent(openai_settings) == [("user", "Q1")]
    assert_books_balance(user)


def test_message_with_parent_id_continues_that_branch(client, openai_settings, session, user):
    openai_settings.configure(reply="A")
    one = ask(client, session, "Q1")
    ask(client, session, "Q2")

    edited = ask(client, session, "Q2 edited", parent_id=one["assistant_message"]["id"])

    assert edited["user_message"]["parent_id"] == one["assistant_message"]["id"]
    assert sent(openai_settings) == [("user", "Q1"), ("assistant", "A"), ("user", "Q2 edited")]
    assert history(client, session) == [
        ("user", "Q1"),
        ("assistant", "A"),
        ("user", "Q2 edited"),
        ("assistant", "A"),
    ]
    ask(client, session, "Q3", parent_id=None)  # null: the current branch
    assert sent(openai_settings) == [
        ("user", "Q1"),
        ("assistant", "A"),
        ("user", "Q2 edited"),
        ("assistant", "A"),
        ("user", "Q3"),
    ]
    assert_books_balance(user)


def test_regenerate_refusals(client, openai_settings, session, user, other_user, general_category):
    answered = ask(client, session, "Q1")
    question_id = answered["user_message"]["id"]
    theirs = baker.make(ChatSession, user=other_user, category=general_category)
    their_question = baker.make(Message, session=theirs, role="user", content="x")
    their_reply = baker.make(Message, session=theirs, role="assistant", content="y", parent=their_question)

    assert regenerate(client, session, question_id).status_code == 404  # not an assistant reply
    assert regenerate(client, session, uuid.uuid4()).status_code == 404
    assert regenerate(client, theirs, their_reply.id).status_code == 404
    assert regenerate(client, session, their_reply.id).status_code == 404
    pending = baker.make(
        Message, session=session, role="assistant", status="pending", parent_id=question_id, content=""
    )
    refused = regenerate(client, session, pending.id)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert LedgerEntry.objects.filter(wallet__user=user, kind="charge").count() == 1


@pytest.mark.parametrize("parent", ["question", "other-session", "unknown", "not-a-uuid"])
def test_message_with_a_bad_parent_id_is_refused(
    client, openai_settings, session, other_user, general_category, parent
):
    answered = ask(client, session, "Q1")
    theirs = baker.make(ChatSession, user=other_user, category=general_category)
    parent_id = {
        "question": answered["user_message"]["id"],
        "other-session": str(baker.make(Message, session=theirs, role="assistant").id),
        "unknown": str(uuid.uuid4()),
        "not-a-uuid": "nope",
    }[parent]
    response = client.post(
        f"/api/sessions/{session.id}/messages/", json={"content": "Q2", "parent_id": parent_id}, headers=JSON
    )
    assert response.status_code == 400, response.text
    assert "parent_id" in response.json()["error"]["details"]
    assert Message.objects.filter(session=session).count() == 2


def test_history_leaf_refusals(client, openai_settings, session, other_user, general_category):
    ask(client, session, "Q1")
    theirs = baker.make(ChatSession, user=other_user, category=general_category)
    their_message = baker.make(Message, session=theirs, role="user")
    url = f"/api/sessions/{session.id}/messages/"
    assert client.get(f"{url}?leaf={their_message.id}").status_code == 404
    assert client.get(f"{url}?leaf={uuid.uuid4()}").status_code == 404
    assert client.get(f"{url}?leaf=nope").status_code == 400
    assert client.get(f"{url}?leaf=").status_code == 400


def test_history_of_a_branch_has_flat_queries(session, user, django_assert_max_num_queries):
    parent, replies = None, []
    for i in range(150):
        question = baker.make(Message, session=session, role="user", content=f"q{i}", parent=parent)
        parent = baker.make(Message, session=session, role="assistant", content=f"a{i}", parent=question)
        replies.append(parent)
        baker.make(Message, session=session, role="assistant", content="sibling", parent=question)
    api = APIClient()
    api.force_authenticate(user)
    for leaf in ("", f"&leaf={replies[120].id}"):
        with django_assert_max_num_queries(4):
            response = api.get(f"/api/sessions/{session.id}/messages/?page_size=100{leaf}")
        results = response.json()["results"]
        assert len(results) == 100
        assert "sibling" not in [m["content"] for m in results]
        assert results[0]["content"] == "q0" and results[1]["parent_id"] == results[0]["id"]


# --- the migration ---------------------------------------------------------------------

BEFORE = ("chats", "0006_session_pinned_archived_and_search")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_conversations_migrate_to_one_branch_and_read_the_same():
    others = [node for node in MigrationExecutor(connection).loader.graph.leaf_nodes() if node[0] != "chats"]
    old = migrate([BEFORE, *others])
    OldUser = old.get_model("accounts", "User")
    OldCategory = old.get_model("chats", "Category")
    OldSession = old.get_model("chats", "ChatSession")
    OldMessage = old.get_model("chats", "Message")
    alice = OldUser.objects.create(login_id="alice", login_key="alice", password="")
    category = OldCategory.objects.create(slug="old", name="Old", prompt_price=1, completion_price=2)
    start = timezone.now() - timedelta(days=3)
    expected = {}
    for s in range(3):
        chat = OldSession.objects.create(user=alice, category=category, title=f"chat {s}")
        rows = []
        for i in range(7):
            role = "user" if i % 2 == 0 else "assistant"
            status = "failed" if (s, i) == (1, 3) else "complete"
            rows.append(OldMessage.objects.create(session=chat, role=role, content=f"{s}:{i}", status=status))
        for i, row in enumerate(rows):
            OldMessage.objects.filter(pk=row.pk).update(created_at=start + timedelta(minutes=10 * s + i))
        expected[chat.pk] = [(row.role, row.content) for row in rows]
    # A question and its reply stored by one INSERT may share a timestamp: the question comes first.
    tied = OldSession.objects.create(user=alice, category=category)
    reply = OldMessage.objects.create(session=tied, role="assistant", content="answer")
    question = OldMessage.objects.create(session=tied, role="user", content="question")
    OldMessage.objects.filter(session=tied).update(created_at=start)
    try:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        api = APIClient()
        api.force_authenticate(User.objects.get(login_id="alice"))
        for session_id, messages in expected.items():
            results = api.get(f"/api/sessions/{session_id}/messages/").json()["results"]
            assert [(m["role"], m["content"]) for m in results] == messages
            assert results[0]["parent_id"] is None
            assert [m["parent_id"] for m in results[1:]] == [m["id"] for m in results[:-1]]
        assert Message.objects.get(pk=reply.pk).parent_id == question.pk
        assert Message.objects.filter(parent__isnull=True).count() == 4  # one root a session
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
