"""A chat reply's usage record: written as the reply ends, in the transaction that settles its hold.

Usage is read from ``UsageRecord`` rows alone (``chats.usage``), so a reply's outlives its
message and its session, as its ``charge`` outlives them in the ledger. The record's id is the
reply's; its ``hold_id`` is the hold its charge settled, the link ``audit_wallets`` checks.
"""

from uuid import UUID

from django.utils import timezone

from chats.models import ChatSession, Message, UsageRecord
from core.db.rows import insert


def reply_record_write(
    *,
    reply: Message,
    hold_id: UUID | None,
    user_id: int | None = None,
    category_id: int | None = None,
    model_id: int | None = None,
) -> None:
    """Record what ``reply`` (settled: its status, tokens and cost set) used, dated when it began.

    ``user_id``, ``category_id`` and ``model_id`` (the catalogue model that priced it) are its
    session's, read from it when not given. A reply
    whose session is gone (``session_id`` None: deleted as it ended) is recorded all the same,
    once however many times its settlement runs.
    """
    if user_id is None:
        user_id, category_id, model_id = (
            ChatSession.objects.filter(pk=reply.session_id)
            .values_list("user_id", "category_id", "category__model_id")
            .get()
        )
    now = timezone.now()
    began = reply.created_at or now
    record = UsageRecord(
        id=reply.pk,
        user_id=user_id,
        session_id=reply.session_id,
        category_id=category_id,
        model_id=model_id,
        status=reply.status,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost=reply.cost,
        hold_id=hold_id,
        deployment=reply.deployment,
        created_at=began,
        duration_ms=max(0, round((now - began).total_seconds() * 1000)),
    )
    if reply.session_id is not None:  # claimed by this settlement: once, one plain INSERT
        insert([record])
    else:
        UsageRecord.objects.bulk_create([record], ignore_conflicts=True)
