"""Writes for chats: sessions, and the two short transactions around a reply.

A reply is paid for in three steps, so that no transaction or row lock is
ever held while the LLM talks:

1. ``reply_begin``: store the user's message and a ``pending`` assistant
   message, and reserve the most the reply can cost, in one transaction
   (one commit) before the provider is called.
2. The stream (``chats.replies``), with no database connection held.
3. ``reply_finish``: store the assistant message and settle the hold to the
   real cost, in one transaction, on every path, with the reply's usage
   record (``chats.replies.records``).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from chats.catalogue.models import CatalogueModel
from chats.catalogue.selectors import model_served
from chats.conversations.selectors import session_get
from chats.errors import ReplyPending
from chats.llm import Usage, WireMessage, estimate_usage
from chats.llm.routing import Route
from chats.models import Category, ChatSession, Message, PaidWhileStreaming, ReplyStatus, UsageRecord
from chats.replies.charges import reply_charge_description
from chats.replies.pricing import completion_tokens_affordable, prompt_tokens_upper_bound, reply_cost
from chats.replies.prompt import max_tokens_capped, prompt_build
from chats.replies.records import reply_record_write
from chats.replies.selectors import reply_get
from chats.replies.slots import reply_slot_give_back
from core.db.rows import columns, fetch_one, insert, instance_from_row, table
from core.errors import NotFound, ValidationFailed
from wallets import selectors as wallet_selectors
from wallets import services as wallet_services
from wallets.errors import InsufficientFunds, SpendCapReached

logger = logging.getLogger(__name__)

TITLE_FROM_MESSAGE_CHARS = 60

# A reply's end, when its model did not give the reason (``stop``, ``length``… when it did).
FINISH_STOPPED = "stopped"
FINISH_ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class Reservation:
    """What any reply's stream needs: the hold that pays for it, and what to ask the model.

    Built before the provider is called, so the stream never touches the database.
    ``catalogue_model`` prices it; ``routes`` are where it is asked, in the order to try them.
    ``category`` is None for a ``/v1/`` request that named a catalogue model.
    """

    hold_id: object | None
    held: int
    category: Category | None
    catalogue_model: CatalogueModel
    prompt: list[WireMessage]
    #: The deployments to try, in order (``chats.llm.routing``).
    routes: tuple[Route, ...]
    #: Per choice; the hold pays for ``max_tokens * choices`` completion tokens.
    max_tokens: int
    choices: int = 1
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ReplyPlan(Reservation):
    """A chat reply: stored as the assistant message of its session."""

    session_id: object
    user_message: Message
    assistant_message_id: object
    #: As the reply began (the question's start, for an untitled session): its charge names it.
    session_title: str = ""


@dataclass(frozen=True, kw_only=True)
class Settlement:
    """What a reply used and cost, and the balance after it."""

    usage: Usage
    cost: int
    balance: int


@dataclass(frozen=True, kw_only=True)
class ReplyResult(Settlement):
    message: Message


def _validated_content(content: str) -> str:
    if not content or not content.strip():
        raise ValidationFailed("The message is empty.", details={"content": ["This field may not be blank."]})
    if len(content) > settings.MESSAGE_MAX_CHARS:
        limit = settings.MESSAGE_MAX_CHARS
        raise ValidationFailed(
            "The message is too long.",
            details={"content": [f"Ensure this field has no more than {limit} characters."]},
        )
    return content


def prompt_tokens_bound(prompt: list[WireMessage]) -> int:
    """The most tokens a chat reply's prompt (plain text messages) can be."""
    prompt_bytes = sum(len(message["content"].encode()) for message in prompt)
    return prompt_tokens_upper_bound(prompt_bytes, len(prompt))


Reserved = TypeVar("Reserved")


def reserve_within_means(
    reserve: Callable[[int, int], Reserved],
    *,
    model: CatalogueModel,
    prompt_tokens: int,
    max_tokens: int,
    choices: int = 1,
    asked: bool = False,
) -> Reserved:
    """``reserve(max_tokens, held)``: the reply's transaction, holding what ``max_tokens`` can cost.

    When the wallet (its balance, or a cap) cannot pay for the worst case, a
    reply whose client set no ``max_tokens`` is bounded to the tokens it can
    pay for, and refused below ``MIN_REPLY_TOKENS``; a client that set one is
    refused with the most it can afford. The first attempt is the only one in
    the common case: the bound is learnt from the refusal (which rolled its
    transaction back), so a wallet that can pay costs no extra query.
    """
    refused: InsufficientFunds | SpendCapReached | None = None
    for _ in range(3):  # the balance, the wallet's caps and the key's cap may each bind in turn
        held = reply_cost(model=model, prompt_tokens=prompt_tokens, completion_tokens=max_tokens * choices)
        try:
            return reserve(max_tokens, held)
        except (InsufficientFunds, SpendCapReached) as exc:
            refused = exc
        affordable = completion_tokens_affordable(
            model=model, prompt_tokens=prompt_tokens, credits=_credits_left(refused), choices=choices
        )
        if asked:
            raise _naming_max_tokens(refused, affordable) from None
        if affordable < settings.MIN_REPLY_TOKENS or affordable >= max_tokens:
            raise refused
        max_tokens = affordable
    raise refused


def _credits_left(refused: InsufficientFunds | SpendCapReached) -> int:
    details = refused.details
    if isinstance(refused, SpendCapReached):
        return details["cap"] - details["spent"]
    return details["available"]


def _naming_max_tokens(refused: InsufficientFunds | SpendCapReached, affordable: int):
    if affordable < 1:
        return refused
    message = f"{refused.message} The most this request can pay for is max_tokens={affordable}."
    return type(refused)(message, details={**refused.details, "max_tokens": affordable})


def _check_parent(session: ChatSession, parent_id: UUID) -> None:
    """A question continues from an assistant reply of its session, or from the current branch."""
    if not Message.objects.filter(session=session, pk=parent_id, role=Message.Role.ASSISTANT).exists():
        raise ValidationFailed(
            "Unknown parent.", details={"parent_id": ["Not an assistant reply of this session."]}
        )


def reply_begin(
    *, user, session_id, content: str, reply_id: UUID | None = None, parent_id: UUID | None = None
) -> ReplyPlan:
    """Check, reserve, then store the question and its pending reply; raises before anything is stored.

    The question continues the current branch, or, with ``parent_id``, the branch ending at
    that reply (an edit: a sibling of the question that followed it). The prompt is that
    branch's messages, then the question.
    """
    session = session_get(user=user, session_id=session_id)
    content = _validated_content(content)
    if parent_id is not None:
        _check_parent(session, parent_id)
    prompt, leaf_id = prompt_build(session, content, leaf_id=parent_id)
    question = Message(
        id=uuid4(),
        session=session,
        parent_id=leaf_id,
        role=Message.Role.USER,
        content=content,
        status=Message.Status.COMPLETE,
    )
    return _reply_reserve(
        user=user,
        session=session,
        question=question,
        reply_id=reply_id,
        prompt=prompt,
    )


def reply_regenerate(*, user, session_id, reply_id: UUID, new_reply_id: UUID | None = None) -> ReplyPlan:
    """Answer ``reply_id``'s question again: a new reply beside it (a sibling), billed like any.

    The earlier reply is kept. The prompt is the branch up to the question, then the question.
    ``new_reply_id`` is the new reply's id when the caller has already named it (the endpoint
    does, so that its slot is taken under that id before anything is stored).
    """
    reply = reply_get(user=user, session_id=session_id, message_id=reply_id)
    if reply.status == Message.Status.PENDING:
        raise ReplyPending()
    question = reply.parent
    if question is None or question.role != Message.Role.USER:
        raise ValidationFailed("This reply answers no question.", details={"message_id": [str(reply_id)]})
    session = question.session = reply.session
    prompt, _ = prompt_build(
        session, question.content, leaf_id=question.parent_id, continues=question.parent_id is not None
    )
    return _reply_reserve(
        user=user,
        session=session,
        question=question,
        reply_id=new_reply_id,
        prompt=prompt,
        new_question=False,
    )


def _reply_reserve(
    *,
    user,
    session: ChatSession,
    question: Message,
    reply_id: UUID | None,
    prompt: list,
    new_question: bool = True,
) -> ReplyPlan:
    """Store the pending reply to ``question`` (and ``question`` itself if ``new_question``) and its
    hold; a wallet that cannot pay for the longest reply gets a shorter one (``reserve_within_means``).
    Priced by the category's catalogue model, asked of its deployments in turn."""
    category = session.category
    served = model_served(model_id=category.model_id)
    prompt = [message.as_dict() for message in prompt]
    assistant_id = reply_id or uuid4()
    rows_count = 2 if new_question else 1

    def reserve(max_tokens: int, held: int) -> ReplyPlan:
        hold_id = uuid4() if held > 0 else None
        assistant = Message(
            id=assistant_id,
            session=session,
            parent_id=question.id,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            hold_id=hold_id,
            lease_expires_at=lease_end(),
        )
        rows = [question, assistant] if new_question else [assistant]
        # One commit before the provider is called: the question, the pending
        # reply and the hold together (a refusal rolls the messages back). The
        # wallet row is locked late and before the session row, the order
        # ``reply_finish`` takes them in, so two replies of one session cannot
        # deadlock.
        with transaction.atomic(durable=True):
            insert(rows)  # created_at stamped in list order: the question first
            if hold_id is not None:
                wallet_services.wallet_hold(
                    user=user, amount=held, description=f"Reply in {session.id}", hold_id=hold_id
                )
            title = "" if session.title else question.content.strip()[:TITLE_FROM_MESSAGE_CHARS]
            if not _session_touch(session_id=session.pk, new_messages=rows_count, title=title):
                # Deleted since it was read: roll the question and the hold back.
                raise NotFound("Session not found.")
        return ReplyPlan(
            session_id=session.id,
            user_message=question,
            assistant_message_id=assistant.id,
            session_title=session.title or title,
            hold_id=hold_id,
            held=held,
            category=category,
            catalogue_model=served.model,
            prompt=prompt,
            routes=served.routes_to_try(),
            max_tokens=max_tokens,
        )

    return reserve_within_means(
        reserve,
        model=served.model,
        prompt_tokens=prompt_tokens_bound(prompt),
        max_tokens=max_output_capped(served.model, None),
    )


def max_output_capped(model: CatalogueModel, asked: int | None) -> int:
    """``max_tokens_capped``, and never more than the model's ``max_output_tokens`` when it has one."""
    capped = max_tokens_capped(asked)
    return capped if model.max_output_tokens is None else max(1, min(capped, model.max_output_tokens))


def _session_touch(*, session_id, new_messages: int, title: str = "") -> bool:
    """Count ``new_messages`` and stamp the session's activity (and its ``title``, if one is given);
    False if the session is gone."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    retitle = ", title = %s" if title else ""
    sql = (
        f"UPDATE {table(ChatSession)} SET last_message_at = %s, updated_at = %s,"
        f" message_count = message_count + %s{retitle} WHERE id = %s"
    )
    session_pk = ChatSession._meta.pk.get_db_prep_value(session_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, now, new_messages, *([title] if title else []), session_pk])
        return cursor.rowcount == 1


def usage_and_cost(plan, *, content: str, usage: Usage | None, status: str) -> tuple[Usage, int]:
    """What a reply used and costs: nothing if it failed, else the reported (or estimated) usage.

    Never more than was held: the hold is the most the reply may cost.
    """
    if status == Message.Status.FAILED:
        usage = Usage(prompt_tokens=0, completion_tokens=0)
    elif usage is None:
        usage = estimate_usage(plan.prompt, content)
    cost = reply_cost(
        model=plan.catalogue_model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
    )
    return usage, min(cost, plan.held)


def hold_settle(*, user, hold_id, status: str, cost: int, description: str):
    """Charge ``cost`` from the hold (or release it for a failure); the wallet as it is then."""
    if hold_id is None:
        return wallet_selectors.wallet_for_user(user=user)
    if status == Message.Status.FAILED:
        return wallet_services.wallet_release(hold_id=hold_id)
    return wallet_services.wallet_settle(hold_id=hold_id, cost=cost, description=description)


def reply_finish(
    *,
    plan: ReplyPlan,
    content: str,
    usage: Usage | None,
    status: str,
    finish_reason: str = "",
    deployment: str = "",
) -> ReplyResult:
    """Store the reply and settle its hold, atomically, whatever happened to the stream.

    ``failed`` charges nothing; otherwise the reported usage (or, when the
    stream was cut before the provider said, an estimate) is charged, never
    more than was held. The message row is locked first, so a reply closed
    meanwhile (by ``release_stale_holds``, or a second call) is left as it is
    and nothing is charged twice.
    """
    usage, cost = usage_and_cost(plan, content=content, usage=usage, status=status)
    user = plan.user_message.session.user
    with transaction.atomic():
        message = _reply_claim(
            reply_id=plan.assistant_message_id,
            content=content,
            status=status,
            usage=usage,
            cost=cost,
            finish_reason=finish_reason,
            deployment=deployment,
        )
        if message is None:
            message = Message.objects.filter(pk=plan.assistant_message_id).first()
            if message is not None:  # closed meanwhile: left as it is, charged once
                wallet = wallet_selectors.wallet_for_user(user=user)
                return ReplyResult(message=message, usage=usage, cost=message.cost, balance=wallet.balance)
        # Claimed, or gone with its deleted session: the hold is settled either way.
        wallet = hold_settle(
            user=user,
            hold_id=plan.hold_id,
            status=status,
            cost=cost,
            description=reply_charge_description(
                reply_id=plan.assistant_message_id,
                session_title=plan.session_title,
                category_name=plan.category.name,
                model=plan.catalogue_model.public_id,
            ),
        )
        if message is None:
            message = Message(
                id=plan.assistant_message_id,
                role=Message.Role.ASSISTANT,
                content=content,
                status=status,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost=cost,
                finish_reason=finish_reason,
                deployment=deployment,
            )
        else:
            _session_touch(session_id=plan.session_id, new_messages=0)
        # What it used, kept beside its charge: usage outlives the session (``chats.replies.records``).
        reply_record_write(
            reply=message,
            hold_id=plan.hold_id,
            user_id=user.pk,
            category_id=plan.category.pk,
            model_id=plan.catalogue_model.pk,
        )
    return ReplyResult(message=message, usage=usage, cost=cost, balance=wallet.balance)


def _reply_claim(
    *, reply_id: UUID, content: str, status: str, usage: Usage, cost: int, finish_reason: str, deployment: str
) -> Message | None:
    """Store a pending reply's outcome, if it is still pending: the stored row, or None.

    One conditional ``UPDATE ... RETURNING`` (PostgreSQL, and SQLite from
    3.35): it claims the reply, so of two settlements only one goes on to
    charge, and it locks the row FOR NO KEY UPDATE (only the reply's own
    columns change), so a question continuing from this reply, whose foreign
    key takes a KEY SHARE lock on it at commit while holding the wallet row
    this settlement needs, does not wait for it.
    """
    fields = Message._meta.concrete_fields
    sql = (
        f"UPDATE {table(Message)} SET content = %s, status = %s, prompt_tokens = %s,"
        f" completion_tokens = %s, cost = %s, finish_reason = %s, deployment = %s"
        f" WHERE id = %s AND status = %s"
        f" RETURNING {columns(fields)}"
    )
    reply_pk = Message._meta.pk.get_db_prep_value(reply_id, connection)
    values = [content, status, usage.prompt_tokens, usage.completion_tokens, cost, finish_reason, deployment]
    row = fetch_one(sql, [*values, reply_pk, Message.Status.PENDING])
    return None if row is None else instance_from_row(Message, fields, row)


def lease_end():
    return timezone.now() + timedelta(seconds=settings.REPLY_LEASE_SECONDS)


def replies_lease_renew(reply_ids: list) -> None:
    """Vouch for streaming chat replies a while longer (one statement for all of a worker's)."""
    pending = Message.objects.filter(pk__in=reply_ids, status=Message.Status.PENDING)
    pending.update(lease_expires_at=lease_end())


def replies_close_stale() -> int:
    """Close replies left ``pending`` by a process that died mid-stream: ``failed``, hold released.

    Chat replies and ``/v1/`` requests alike. A reply is stale once its lease
    has run out: a live one renews it however long a slow model takes. Each
    in its own transaction, the row locked first as in ``reply_finish``, so a
    late finish and this job never both settle one hold.
    """
    return _close_stale(Message) + _close_stale(UsageRecord)


def _close_stale(model: type[PaidWhileStreaming]) -> int:
    pending = model.objects.filter(status=ReplyStatus.PENDING)
    closed = 0
    for row_id in pending.filter(lease_expires_at__lt=timezone.now()).values_list("pk", flat=True):
        with transaction.atomic():
            row = (
                pending.select_for_update(skip_locked=True, no_key=True)
                .filter(pk=row_id, lease_expires_at__lt=timezone.now())
                .first()
            )
            if row is None:
                continue
            if row.hold_id is not None:
                wallet_services.wallet_release(hold_id=row.hold_id)
            row.status = ReplyStatus.FAILED
            fields = ["status"]
            if isinstance(row, Message):
                row.finish_reason = FINISH_ERROR
                fields.append("finish_reason")
            row.save(update_fields=fields)
            if isinstance(row, Message):
                reply_record_write(reply=row, hold_id=row.hold_id)
            closed += 1
        _slot_give_back_quietly(row)
    return closed


def _slot_give_back_quietly(row: PaidWhileStreaming) -> None:
    """The concurrency slot of a reply whose worker died, freed now rather than when its own lease
    runs out; a slot that cannot be freed (Redis down) still expires with that lease."""
    user_id = (
        row.user_id
        if isinstance(row, UsageRecord)
        else ChatSession.objects.filter(pk=row.session_id).values_list("user_id", flat=True).first()
    )
    try:
        reply_slot_give_back(user_id=user_id, token=str(row.pk))
    except Exception:
        logger.warning("Could not free the slot of stale reply %s", row.pk, exc_info=True)


def holds_release_orphaned(*, older_than: timedelta) -> list:
    """Release holds still open ``older_than`` after they were made, except those of live replies.

    Such a hold belongs to no pending reply (a process died between
    reserving and storing, or a reply's session was deleted as it ended);
    a hold whose reply still renews its lease is left to that reply.
    """
    live = [
        hold_id
        for model in (Message, UsageRecord)
        for hold_id in model.objects.filter(
            status=ReplyStatus.PENDING, lease_expires_at__gte=timezone.now(), hold_id__isnull=False
        ).values_list("hold_id", flat=True)
    ]
    released = []
    for hold in wallet_selectors.holds_stale(older_than=older_than).exclude(pk__in=live):
        with transaction.atomic(durable=True):
            wallet_services.wallet_release(hold_id=hold.pk)
        hold.refresh_from_db()
        if hold.status == hold.Status.RELEASED:  # not settled by its reply meanwhile
            released.append(hold)
    return released
