"""Conversations as documents to download: one session as JSON or Markdown, or a whole account."""

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from chats.conversations import exports
from chats.conversations.selectors import messages_for_export
from chats.models import ChatSession, Message
from tests.helpers.asserts import assert_error
from tests.helpers.conversations import ids, make_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(user, general):
    session = make_session(user, general, title="Trip", notes="pack light", pinned=True)
    start = timezone.now() - timedelta(hours=1)
    message = None  # one branch: each message the parent of the next
    for index, (role, content) in enumerate(
        [("user", "Where to?"), ("assistant", "Lisbon."), ("user", "Why?"), ("assistant", "")]
    ):
        message = baker.make(Message, session=session, role=role, content=content, parent=message)
        Message.objects.filter(pk=message.pk).update(created_at=start + timedelta(minutes=index))
    Message.objects.filter(session=session, content="").update(status="failed")
    return session


def messages_shown(client, session) -> list[dict]:
    return client.get(f"/api/sessions/{session.id}/messages/?page_size=100").json()["results"]


def test_export_session_as_json(auth_client, conversation):
    response = auth_client.get(f"/api/sessions/{conversation.id}/export/?format=json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="parley-session-{conversation.id}.json"'
    document = response.json()
    assert document == {
        **auth_client.get(f"/api/sessions/{conversation.id}/").json(),
        "messages": messages_shown(auth_client, conversation),
    }
    assert [m["content"] for m in document["messages"]] == ["Where to?", "Lisbon.", "Why?", ""]
    assert auth_client.get(f"/api/sessions/{conversation.id}/export/").json() == document  # json by default


def test_export_session_as_markdown(auth_client, conversation):
    response = auth_client.get(f"/api/sessions/{conversation.id}/export/?format=markdown")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="parley-session-{conversation.id}.md"'
    text = response.content.decode()
    assert text.startswith("# Trip\n")
    assert "- Pinned" in text and "pack light" in text
    assert text.index("Where to?") < text.index("Lisbon.") < text.index("Why?")
    assert "(failed)" in text


@pytest.mark.parametrize("value", ["xml", "JSON", "markdown%00", "csv"])
def test_export_bad_format_is_400(auth_client, conversation, value):
    error = assert_error(
        auth_client.get(f"/api/sessions/{conversation.id}/export/?format={value}"), 400, "validation_error"
    )
    assert "format" in error["details"]


@pytest.mark.parametrize("export_format", ["json", "markdown"])
def test_export_of_another_users_session_is_404(other_client, conversation, export_format):
    response = other_client.get(f"/api/sessions/{conversation.id}/export/?format={export_format}")

    assert_error(response, 404, "not_found")
    assert "Lisbon" not in response.content.decode()


def test_export_account_streams_every_session_with_its_messages(
    auth_client, user, other_user, general, conversation
):
    empty = make_session(user, general, title="empty", archived=True)
    theirs = make_session(other_user, general, title="bob-secret")
    baker.make(Message, session=theirs, content="bob-secret message")

    response = auth_client.get("/api/export/")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="parley-export-')
    text = response.getvalue().decode()
    assert "bob-secret" not in text
    document = json.loads(text)
    assert set(document) == {"exported_at", "sessions"}
    by_id = {session["id"]: session for session in document["sessions"]}
    assert list(by_id) == ids(*ChatSession.objects.filter(user=user).order_by("created_at", "id"))
    assert by_id[str(conversation.id)] == auth_client.get(f"/api/sessions/{conversation.id}/export/").json()
    assert by_id[str(empty.id)]["messages"] == []


def test_export_account_for_a_user_without_sessions(other_client, conversation):
    document = json.loads(other_client.get("/api/export/").getvalue())

    assert document["sessions"] == []


def test_export_account_reads_a_fixed_number_of_queries(
    auth_client, user, general, django_assert_max_num_queries
):
    sessions = ChatSession.objects.bulk_create([ChatSession(user=user, category=general) for _ in range(40)])
    Message.objects.bulk_create(
        [Message(session=s, role="user", content="hi") for s in sessions for _ in range(30)]
    )

    # The user, the sessions, the messages (server-side cursors on PostgreSQL: a few statements each).
    with django_assert_max_num_queries(8):
        document = json.loads(auth_client.get("/api/export/").getvalue())

    assert sum(len(s["messages"]) for s in document["sessions"]) == 1200


def test_export_account_comes_in_pieces(user, general):
    """A generator of bounded pieces: the document is never built whole."""
    sessions = ChatSession.objects.bulk_create([ChatSession(user=user, category=general) for _ in range(5)])
    Message.objects.bulk_create(
        [Message(session=s, role="user", content="x" * 1000) for s in sessions for _ in range(100)]
    )

    pieces = list(exports.account_json(user=user))

    assert len(pieces) > 5
    assert max(len(piece) for piece in pieces) < exports.PIECE_CHARS + 3000
    assert len(json.loads("".join(pieces))["sessions"]) == 5


def test_export_skips_messages_of_a_session_it_did_not_list(user, general):
    """Sessions and messages are two statements: one created between them is newer than the export."""
    listed_session = make_session(user, general)
    baker.make(Message, session=listed_session, content="kept")
    unlisted = make_session(user, general)
    ChatSession.objects.filter(pk=unlisted.pk).update(
        created_at=listed_session.created_at - timedelta(seconds=1)
    )
    baker.make(Message, session=unlisted, content="not listed")
    messages = messages_for_export(sessions=ChatSession.objects.filter(user=user))

    document = json.loads("[" + "".join(exports._session_documents([listed_session], messages)) + "]")

    assert [m["content"] for m in document[0]["messages"]] == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_export_account_streams_under_asgi(live_asgi_url, user, general, recwarn):
    """Under uvicorn the pieces are read one at a time in a thread, not listed first.

    Handed a sync iterator, Django's ASGI handler reads it whole into a list, and warns.
    """
    session = baker.make(ChatSession, user=user, category=general, title="under asgi")
    baker.make(Message, session=session, content="x" * 1000, _quantity=200)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}

    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{live_asgi_url}/api/export/", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        text = response.read().decode()

    [exported] = json.loads(text)["sessions"]
    assert exported["title"] == "under asgi"
    assert len(exported["messages"]) == 200
    assert not [w for w in recwarn if "synchronous iterators" in str(w.message)]
