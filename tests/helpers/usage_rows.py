"""Replies and /v1/ requests dated and priced at will, for the usage reports."""

import datetime as dt

from model_bakery import baker

from chats.models import Category, ChatSession, Message, UsageRecord


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def reply(user, category: Category, cost: int, when: dt.datetime, status=Message.Status.COMPLETE) -> Message:
    """An assistant reply that cost ``cost`` credits, dated ``when`` (``created_at`` is set on insert)."""
    session = baker.make(ChatSession, user=user, category=category)
    message = baker.make(Message, session=session, role=Message.Role.ASSISTANT, cost=cost, status=status)
    Message.objects.filter(pk=message.pk).update(created_at=when)
    return message


def request(user, category: Category, cost: int, when: dt.datetime, status=UsageRecord.Status.COMPLETE):
    """A ``/v1/`` request that cost ``cost`` credits, dated ``when``."""
    record = baker.make(
        UsageRecord, user=user, api_key=baker.make("accounts.ApiKey", user=user), category=category,
        cost=cost, status=status,
    )  # fmt: skip
    UsageRecord.objects.filter(pk=record.pk).update(created_at=when)
    return record
