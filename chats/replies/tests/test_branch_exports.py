"""A conversation with branches, exported: the Markdown transcript follows one branch and says where
siblings are; the JSON document keeps every message with its parent.

The branches are made by the reply services themselves: a regenerated reply, then an edited question.
"""

import json
import re

import pytest

from chats.models import ChatSession, Message
from chats.replies.services import reply_begin, reply_finish, reply_regenerate
from tests.helpers.asserts import assert_error
from tests.helpers.conversations import make_session

pytestmark = pytest.mark.django_db


def answered(plan, text: str) -> Message:
    return reply_finish(plan=plan, content=text, usage=None, status="complete").message


@pytest.fixture
def branched(user, general_category) -> tuple[ChatSession, dict[str, Message]]:
    """Q1 answered twice (A1, then A1b regenerated); Q2 after A1b, then edited into Q2b; each answered.

    Seven messages, three branches: Q1 A1 / Q1 A1b Q2 A2 / Q1 A1b Q2b A2b (the newest).
    """
    session = make_session(user, general_category, title="Branches")
    a1 = answered(reply_begin(user=user, session_id=session.id, content="Q1"), "A1")
    a1b = answered(reply_regenerate(user=user, session_id=session.id, reply_id=a1.pk), "A1b")
    a2 = answered(reply_begin(user=user, session_id=session.id, content="Q2"), "A2")
    a2b = answered(reply_begin(user=user, session_id=session.id, content="Q2b", parent_id=a1b.pk), "A2b")
    return session, {"a1": a1, "a1b": a1b, "a2": a2, "a2b": a2b}


def transcript(auth_client, session, **query) -> tuple[str, list[tuple[str, str, list[str]]]]:
    """The Markdown export, and its messages: (who, content, the marks after the heading's time)."""
    response = auth_client.get(f"/api/sessions/{session.id}/export/", {"format": "markdown", **query})
    assert response.status_code == 200, response.content
    text = response.content.decode()
    messages = []
    for block in text.split("## Conversation\n", 1)[1].split("\n### ")[1:]:
        heading, _, content = block.partition("\n\n")
        who, _, after = heading.partition(", ")
        messages.append((who, content.strip(), re.findall(r"\(([^)]*)\)", after)))
    return text, messages


def test_markdown_export_is_the_current_branch_with_its_siblings_marked(auth_client, branched):
    session, _ = branched

    text, messages = transcript(auth_client, session)

    assert messages == [
        ("You", "Q1", []),
        ("Assistant", "A1b", ["2 of 2 replies"]),
        ("You", "Q2b", ["edited: 2 of 2 versions"]),
        ("Assistant", "A2b", []),
    ]
    assert "- Branch: the newest, 4 of 7 messages (the JSON export has all)" in text
    # As the history shows it.
    history = auth_client.get(f"/api/sessions/{session.id}/messages/").json()["results"]
    assert [m["content"] for m in history] == [content for _, content, _ in messages]


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (
            "a2",
            [
                ("You", "Q1", []),
                ("Assistant", "A1b", ["2 of 2 replies"]),
                ("You", "Q2", ["edited: 1 of 2 versions"]),
                ("Assistant", "A2", []),
            ],
        ),
        ("a1", [("You", "Q1", []), ("Assistant", "A1", ["1 of 2 replies"])]),
        ("a1b", [("You", "Q1", []), ("Assistant", "A1b", ["2 of 2 replies"])]),  # a branch point, not a leaf
    ],
)
def test_markdown_export_of_the_branch_ending_at_leaf(auth_client, branched, leaf, expected):
    session, replies = branched

    text, messages = transcript(auth_client, session, leaf=str(replies[leaf].pk))

    assert messages == expected
    assert f"- Branch: the one asked for, {len(expected)} of 7 messages" in text


def test_markdown_export_of_a_conversation_without_branches_says_nothing_of_them(
    auth_client, user, general_category
):
    session = make_session(user, general_category)
    answered(reply_begin(user=user, session_id=session.id, content="Q1"), "A1")

    text, messages = transcript(auth_client, session)

    assert messages == [("You", "Q1", []), ("Assistant", "A1", [])]
    assert "Branch:" not in text


@pytest.mark.parametrize(("leaf", "status"), [("00000000-0000-4000-8000-000000000000", 404), ("nope", 400)])
def test_markdown_export_of_an_unknown_leaf(auth_client, branched, leaf, status):
    session, _ = branched
    response = auth_client.get(f"/api/sessions/{session.id}/export/", {"format": "markdown", "leaf": leaf})
    assert_error(response, status, "not_found" if status == 404 else "validation_error")


def test_json_exports_keep_every_message_with_its_parent(auth_client, branched):
    session, _ = branched
    stored = {
        str(pk): (str(parent) if parent else None, content)
        for pk, parent, content in Message.objects.filter(session=session).values_list(
            "pk", "parent_id", "content"
        )
    }

    document = auth_client.get(f"/api/sessions/{session.id}/export/", {"format": "json"}).json()
    account = json.loads(auth_client.get("/api/export/").getvalue())  # streamed

    assert len(stored) == 7
    for messages in (document["messages"], account["sessions"][0]["messages"]):
        assert {m["id"]: (m["parent_id"], m["content"]) for m in messages} == stored
        assert [m["content"] for m in messages] == [
            "Q1",
            "A1",
            "A1b",
            "Q2",
            "A2",
            "Q2b",
            "A2b",
        ]  # oldest first
