"""The reads on every reply's path, as plain statements (on SQLite and on PostgreSQL):
``session_get``, the session and its category as the ORM would build them, and
``prompt_branch``, the branch a new message continues, read back only as far as the
prompt's budget, in one recursive statement."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from chats.conversations.selectors import session_get
from chats.llm import ChatMessage, estimate_message_tokens
from chats.models import ChatSession, Message
from chats.replies.prompt import PromptBranch, _branch_from_leaf, prompt_branch
from chats.replies.services import reply_begin, reply_finish
from core.errors import NotFound
from tests.helpers.catalogue import category_make
from tests.helpers.orm import fields_of

START = timezone.now() - timedelta(days=1)


def chain(session, contents, *, parent=None, statuses=None, start=0) -> list[Message]:
    """Messages answering one another (user, assistant, user…) from ``parent``, a second apart."""
    made = []
    for index, content in enumerate(contents):
        parent = Message.objects.create(
            session=session,
            parent=parent,
            role="user" if (start + index) % 2 == 0 else "assistant",
            content=content,
            status=(statuses or {}).get(index, Message.Status.COMPLETE),
        )
        Message.objects.filter(pk=parent.pk).update(created_at=START + timedelta(seconds=start + index))
        made.append(parent)
    return made


def expected(messages: list[Message], budget: int) -> list[str]:
    """The rule, over the branch walked in Python: the newest context messages that fit."""
    chosen, used = [], 0
    for message in reversed(messages):
        if message.status in (Message.Status.FAILED, Message.Status.PENDING) or not message.content:
            continue
        used += estimate_message_tokens(ChatMessage(message.role, message.content))
        if used > budget:
            break
        chosen.append(message.content)
    return chosen[::-1]


def contents(branch) -> list[str]:
    return [message.content for message in branch.history]


@pytest.mark.parametrize("budget", [0, 7, 30, 61, 62, 200, 10_000])
def test_the_budget_cuts_where_the_estimate_says_with_text_of_every_width(session, budget):
    texts = ["plain ascii", "é" * 9, "漢字かな" * 3, "🙂" * 5, "mixed é 漢 🙂 text", "last"]
    messages = chain(session, texts)

    branch = prompt_branch(session=session, budget_tokens=budget)

    assert contents(branch) == expected(messages, budget)
    assert branch.leaf_id == messages[-1].id


def test_failed_pending_and_empty_messages_are_left_out_and_walked_through(session):
    statuses = {1: Message.Status.FAILED, 3: Message.Status.PENDING}
    messages = chain(session, ["q1", "broken", "q2", "", "q3", "a3"], statuses=statuses)
    Message.objects.filter(pk=messages[3].pk).update(status=Message.Status.COMPLETE)

    branch = prompt_branch(session=session, budget_tokens=10_000)

    assert contents(branch) == ["q1", "q2", "q3", "a3"]


def test_by_default_the_newest_leaf_and_only_its_branch(session):
    trunk = chain(session, ["q1", "a1"])
    chain(session, ["old question", "old answer"], parent=trunk[-1], start=2)
    newer = chain(session, ["new question", "new answer"], parent=trunk[-1], start=4)

    branch = prompt_branch(session=session, budget_tokens=10_000)

    assert contents(branch) == ["q1", "a1", "new question", "new answer"]
    assert branch.leaf_id == newer[-1].id


def test_from_a_leaf_inside_the_conversation(session):
    messages = chain(session, ["q1", "a1", "q2", "a2"])

    branch = prompt_branch(session=session, budget_tokens=10_000, leaf_id=messages[1].id)

    assert contents(branch) == ["q1", "a1"]
    assert branch.leaf_id == messages[1].id


def test_an_empty_session_or_a_leaf_elsewhere_is_an_empty_branch(session, user, general_category):
    elsewhere = chain(baker.make(ChatSession, user=user, category=general_category), ["other", "thread"])

    assert prompt_branch(session=session, budget_tokens=100) == PromptBranch(None, [])
    foreign = prompt_branch(session=session, budget_tokens=100, leaf_id=elsewhere[-1].id)
    assert foreign == PromptBranch(None, [])


def test_a_long_conversation_is_read_back_only_as_far_as_the_budget(session):
    messages = chain(session, [f"message number {n:03d}" for n in range(300)])
    per_message = estimate_message_tokens(ChatMessage("user", "message number 000"))

    with CaptureQueriesContext(connection) as captured:
        branch = prompt_branch(session=session, budget_tokens=10 * per_message)
    rows = _branch_from_leaf(session_id=session.pk, leaf_id=None, budget_tokens=10 * per_message)

    assert contents(branch) == [message.content for message in messages[-10:]]
    assert len(captured.captured_queries) == 1
    assert len(rows) == 11  # the ten that fit, and the first that does not


def test_a_message_is_reserved_in_a_fixed_handful_of_statements(session):
    """The session, the branch, the category's model (and its upstream name: the first time only,
    then from the process's cache), then one transaction: both messages, the wallet, the hold, the
    session."""
    chain(session, [f"earlier {n}" for n in range(40)])
    for time in range(2):  # a longer branch changes nothing
        with CaptureQueriesContext(connection) as captured:
            plan = reply_begin(user=session.user, session_id=session.id, content="next")
        statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
        assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")] == [
            "SELECT",
            "WITH",
            *(["SELECT"] if time == 0 else []),
            "INSERT",
            "UPDATE",
            "INSERT",
            "UPDATE",
        ]
        reply_finish(plan=plan, content="ok", usage=None, status=Message.Status.COMPLETE)


def test_session_get_builds_the_session_and_its_category_as_the_orm_does(user):
    category = category_make(
        "exacting",
        name="Exacting ✓",
        system_prompt="Be exact.",
        upstream_model="m-1",
        prompt_price=Decimal("0.0123"),
        completion_price=Decimal("12.5"),
        is_active=False,
        order=7,
    )
    made = ChatSession.objects.create(user=user, category=category, title="Été 漢字", notes="n", pinned=True)

    with CaptureQueriesContext(connection) as captured:
        session = session_get(user=user, session_id=str(made.pk).upper())

    orm = ChatSession.objects.select_related("category").get(pk=made.pk)
    assert fields_of(session) == fields_of(orm)
    assert fields_of(session.category) == fields_of(orm.category)
    assert session.category.model_id == category.model_id
    assert session.created_at.tzinfo is not None
    assert session.user is user
    assert not session._state.adding
    assert len(captured.captured_queries) == 1


def test_session_get_is_not_found_for_another_user_or_a_malformed_id(user, other_user, general_category):
    theirs = ChatSession.objects.create(user=other_user, category=general_category)
    for session_id in (theirs.pk, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound):
            session_get(user=user, session_id=session_id)


def test_the_reservation_stores_both_messages_and_the_sessions_activity(session):
    before = timezone.now()
    plan = reply_begin(user=session.user, session_id=session.id, content="  What is a tide?  ")
    question, reply = Message.objects.filter(session=session).order_by("created_at")

    assert (question.id, reply.id) == (plan.user_message.id, plan.assistant_message_id)
    assert (question.role, question.status, question.content) == ("user", "complete", "  What is a tide?  ")
    assert (reply.role, reply.status, reply.parent_id, reply.hold_id) == (
        "assistant",
        "pending",
        question.id,
        plan.hold_id,
    )
    assert question.parent_id is None
    assert before <= question.created_at < reply.created_at
    assert reply.lease_expires_at > timezone.now()
    session.refresh_from_db()
    assert (session.title, session.message_count) == ("What is a tide?", 2)
    assert session.last_message_at >= before

    reply_finish(plan=plan, content="Water.", usage=None, status=Message.Status.COMPLETE)
    reply_begin(user=session.user, session_id=session.id, content="And waves?")
    session.refresh_from_db()
    assert (session.title, session.message_count) == ("What is a tide?", 4)
    latest = Message.objects.filter(session=session).order_by("-created_at")[1]
    assert latest.parent_id == reply.id  # the question continues the branch
