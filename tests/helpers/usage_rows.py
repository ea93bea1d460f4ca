"""Replies and /v1/ requests for the usage reports: dated and priced at will, or charged through
the real services."""

import datetime as dt
from collections.abc import Iterable, Sequence

from model_bakery import baker

from accounts.services import api_key_create
from chats.llm import Usage
from chats.models import Category, ChatSession, Message, UsageRecord
from chats.replies.services import reply_begin, reply_finish
from chats.v1.services import completion_begin, completion_finish
from chats.v1.wire import completion_request
from wallets.services import wallet_top_up


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def reply(user, category: Category, cost: int, when: dt.datetime, status=Message.Status.COMPLETE) -> Message:
    """An assistant reply that cost ``cost`` credits, dated ``when`` (``created_at`` is set on insert),
    with its usage record once it has ended, as ``reply_finish`` writes it."""
    session = baker.make(ChatSession, user=user, category=category)
    message = baker.make(Message, session=session, role=Message.Role.ASSISTANT, cost=cost, status=status)
    Message.objects.filter(pk=message.pk).update(created_at=when)
    if status != Message.Status.PENDING:
        baker.make(
            UsageRecord, id=message.pk, user=user, api_key=None, session=session, category=category,
            cost=cost, status=status, created_at=when,
        )  # fmt: skip
    return message


def request(user, category: Category, cost: int, when: dt.datetime, status=UsageRecord.Status.COMPLETE):
    """A ``/v1/`` request that cost ``cost`` credits, dated ``when``."""
    record = baker.make(
        UsageRecord, user=user, api_key=baker.make("accounts.ApiKey", user=user), category=category,
        cost=cost, status=status,
    )  # fmt: skip
    UsageRecord.objects.filter(pk=record.pk).update(created_at=when)
    return record


def charge_through_services(people: Iterable, categories: Sequence[Category], *, api_model: str) -> None:
    """Replies and ``/v1/`` requests through the real services, so that each charge is in the ledger.

    Each person is topped up, then gets three replies in each category, one ``/v1/`` request to
    ``api_model`` with a key of their own, and a failed reply (in the last category's chat).
    """
    for person in people:
        wallet_top_up(user=person, amount=10_000, reason="test")
        for category in categories:
            chat = baker.make(ChatSession, user=person, category=category)
            for i in range(3):
                plan = reply_begin(user=person, session_id=chat.id, content=f"question {i}")
                reply_finish(plan=plan, content="an answer " * (i + 1) * 20, usage=None, status="complete")
        key, _ = api_key_create(user=person, name="k")
        request = completion_request({"model": api_model, "messages": [{"role": "user", "content": "hi"}]})
        plan = completion_begin(user=person, api_key=key, request=request)
        completion_finish(
            plan=plan, content="", usage=Usage(prompt_tokens=300, completion_tokens=900), status="complete"
        )
        failed = reply_begin(user=person, session_id=chat.id, content="no answer")
        reply_finish(plan=failed, content="", usage=None, status="failed")
