"""What a reply is asked: the system prompt, then the history that fits, then the question."""

import pytest
from django.test import override_settings
from model_bakery import baker

from chats.llm import estimate_prompt_tokens
from chats.models import Message
from chats.replies.services import reply_begin

pytestmark = pytest.mark.django_db


@pytest.fixture
def category(cheap_category):
    return cheap_category


def chained(session, *messages: dict) -> Message:
    """Messages of one branch, each the parent of the next; the last one."""
    parent = None
    for fields in messages:
        parent = baker.make(Message, session=session, parent=parent, **fields)
    return parent


def test_prompt_is_system_then_recent_history_that_fits_then_the_question(session):
    chained(
        session,
        *({"role": "user", "content": f"old message {i:02d} " + "x" * 400} for i in range(30)),
        {"role": "assistant", "content": "failed", "status": Message.Status.FAILED},
        {"role": "assistant", "content": "", "status": Message.Status.PENDING},
    )
    with override_settings(LLM_CONTEXT_TOKENS=600):
        plan = reply_begin(user=session.user, session_id=session.id, content="now")
    prompt = plan.prompt
    assert prompt[0] == {"role": "system", "content": "Be terse."}
    assert prompt[-1] == {"role": "user", "content": "now"}
    history = [m["content"][:14] for m in prompt[1:-1]]
    # About 105 estimated tokens each: five of the newest fit in 600, oldest first.
    assert history == [f"old message {i:02d}" for i in range(25, 30)]
    assert all("failed" not in m["content"] for m in prompt)


def test_prompt_keeps_a_long_history_that_fits_across_pages(session):
    chained(
        session, *({"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(120))
    )
    with override_settings(LLM_CONTEXT_TOKENS=4096):
        plan = reply_begin(user=session.user, session_id=session.id, content="now")
    assert [m["content"] for m in plan.prompt[1:-1]] == [f"m{i}" for i in range(120)]
    assert estimate_prompt_tokens(plan.prompt) <= 4096


def test_prompt_never_exceeds_the_token_budget(session):
    for i in range(200):
        baker.make(Message, session=session, role="user", content=f"message {i} " + "y" * (i * 7 % 300))
    with override_settings(LLM_CONTEXT_TOKENS=1000):
        plan = reply_begin(user=session.user, session_id=session.id, content="now")
    assert estimate_prompt_tokens(plan.prompt) <= 1000
    assert plan.prompt[-2]["content"].startswith("message 199 ")
