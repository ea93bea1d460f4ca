"""``selectors.prompt_branch``: the branch a new message continues, read back only as far as the
prompt's budget, in one recursive statement (on SQLite and on PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from chats import selectors, services
from chats.llm import ChatMessage, estimate_message_tokens
from chats.models import ChatSession, Message

START = timezone.now() - timedelta(days=1)


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


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

    branch = selectors.prompt_branch(session=session, budget_tokens=budget)

    assert contents(branch) == expected(messages, budget)
    assert branch.leaf_id == messages[-1].id


def test_failed_pending_and_empty_messages_are_left_out_and_walked_through(session):
    statuses = {1: Message.Status.FAILED, 3: Message.Status.PENDING}
    messages = chain(session, ["q1", "broken", "q2", "", "q3", "a3"], statuses=statuses)
    Message.objects.filter(pk=messages[3].pk).update(status=Message.Status.COMPLETE)

    branch = selectors.prompt_branch(session=session, budget_tokens=10_000)

    assert contents(branch) == ["q1", "q2", "q3", "a3"]


def test_by_default_the_newest_leaf_and_only_its_branch(session):
    trunk = chain(session, ["q1", "a1"])
    chain(session, ["old question", "old answer"], parent=trunk[-1], start=2)
    newer = chain(session, ["new question", "new answer"], parent=trunk[-1], start=4)

    branch = selectors.prompt_branch(session=session, budget_tokens=10_000)

    assert contents(branch) == ["q1", "a1", "new question", "new answer"]
    assert branch.leaf_id == newer[-1].id


def test_from_a_leaf_inside_the_conversation(session):
    messages = chain(session, ["q1", "a1", "q2", "a2"])

    branch = selectors.prompt_branch(session=session, budget_tokens=10_000, leaf_id=messages[1].id)

    assert contents(branch) == ["q1", "a1"]
    assert branch.leaf_id == messages[1].id


def test_an_empty_session_or_a_leaf_elsewhere_is_an_empty_branch(session, user, general_category):
    elsewhere = chain(baker.make(ChatSession, user=user, category=general_category), ["other", "thread"])

    assert selectors.prompt_branch(session=session, budget_tokens=100) == selectors.PromptBranch(None, [])
    foreign = selectors.prompt_branch(session=session, budget_tokens=100, leaf_id=elsewhere[-1].id)
    assert foreign == selectors.PromptBranch(None, [])


def test_a_long_conversation_is_read_back_only_as_far_as_the_budget(session):
    messages = chain(session, [f"message number {n:03d}" for n in range(300)])
    per_message = estimate_message_tokens(ChatMessage("user", "message number 000"))

    with CaptureQueriesContext(connection) as captured:
        branch = selectors.prompt_branch(session=session, budget_tokens=10 * per_message)
    rows = selectors._branch_from_leaf(session_id=session.pk, leaf_id=None, budget_tokens=10 * per_message)

    assert contents(branch) == [message.content for message in messages[-10:]]
    assert len(captured.captured_queries) == 1
    assert len(rows) == 11  # the ten that fit, and the first that does not


def test_a_message_is_reserved_in_a_fixed_handful_of_statements(session):
    """The session, the branch, then one transaction: both messages, the wallet, the hold, the session."""
    chain(session, [f"earlier {n}" for n in range(40)])
    for _ in range(2):  # a longer branch changes nothing
        with CaptureQueriesContext(connection) as captured:
            plan = services.reply_begin(user=session.user, session_id=session.id, content="next")
        statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
        assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")] == [
            "SELECT",
            "WITH",
            "INSERT",
            "UPDATE",
            "INSERT",
            "UPDATE",
        ]
        services.reply_finish(plan=plan, content="ok", usage=None, status=Message.Status.COMPLETE)
