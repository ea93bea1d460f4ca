"""Writes for ``/v1/``: a completion's reservation and settlement, as a chat reply's, recorded as a
usage record."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chats.errors import ModelNotFound
from chats.llm import ChatMessage, Usage
from chats.models import UsageRecord
from chats.replies.outcomes import ReplyOutcome, settled_outcomes
from chats.replies.prompt import max_tokens_capped, with_system_prompt
from chats.replies.services import (
    Reservation,
    Settlement,
    hold_settle,
    lease_end,
    reply_max_cost,
    usage_and_cost,
)
from chats.v1.selectors import api_key_spent, model_category
from core.db.rows import insert
from wallets import selectors as wallet_selectors
from wallets import services as wallet_services
from wallets.errors import SpendCapReached


@dataclass(frozen=True, kw_only=True)
class CompletionPlan(Reservation):
    """A ``/v1/`` request reserved and recorded: its usage record, its owner, its key."""

    record_id: object
    user: Any
    key_label: str


@dataclass(frozen=True, kw_only=True)
class CompletionResult(Settlement):
    record_id: object


def completion_begin(
    *,
    user,
    api_key,
    model: str,
    messages: list[ChatMessage],
    max_tokens: int | None = None,
    options: dict[str, Any] | None = None,
) -> CompletionPlan:
    """Reserve the most a ``/v1/`` request can cost and record it, in one commit, before the provider.

    ``model`` names a category: its system prompt goes first, its model and
    prices apply. The conversation is the caller's and is not stored.
    """
    category = model_category(slug=model)
    if category is None:
        raise ModelNotFound(f"The model {model!r} does not exist.", details={"model": model})
    prompt = with_system_prompt(category, messages)
    max_tokens = max_tokens_capped(max_tokens)
    held = reply_max_cost(category=category, prompt=prompt, max_tokens=max_tokens)
    hold_id = uuid4() if held > 0 else None
    key_label = f"{api_key.prefix} ({api_key.name})" if api_key.name else api_key.prefix
    with transaction.atomic(durable=True):
        record = UsageRecord(
            user=user,
            api_key=api_key,
            category=category,
            status=UsageRecord.Status.PENDING,
            hold_id=hold_id,
            lease_expires_at=lease_end(),
        )
        insert([record])
        if hold_id is not None:
            wallet_services.wallet_hold(
                user=user, amount=held, description=f"API request with key {key_label}", hold_id=hold_id
            )
            _check_key_cap(api_key, record_id=record.id, required=held)
    return CompletionPlan(
        record_id=record.id,
        user=user,
        key_label=key_label,
        hold_id=hold_id,
        held=held,
        category=category,
        prompt=prompt,
        model=category.model or settings.LLM_MODEL,
        max_tokens=max_tokens,
        options=options or {},
    )


def _check_key_cap(api_key, *, record_id, required: int) -> None:
    """The key's own monthly cap, checked as the wallet's are: after the wallet row is locked."""
    cap = api_key.monthly_cap
    if cap is None:
        return
    since = wallet_selectors.spend_period_start("month")
    spent = api_key_spent(api_key=api_key, since=since, excluding=record_id)
    if spent + required > cap:
        raise SpendCapReached(details={"cap": cap, "period": "month", "spent": spent, "required": required})


def completion_finish(
    *, plan: CompletionPlan, content: str, usage: Usage | None, status: str
) -> CompletionResult:
    """Record what a ``/v1/`` request used and settle its hold, as ``reply_finish`` does for a chat reply.

    The ledger entry names the key. The content is not stored.
    """
    usage, cost = usage_and_cost(plan, content=content, usage=usage, status=status)
    with transaction.atomic():
        record = UsageRecord.objects.select_for_update().get(pk=plan.record_id)
        if record.status != UsageRecord.Status.PENDING:  # closed meanwhile by the stale sweep
            wallet = wallet_selectors.wallet_for_user(user=plan.user)
            return CompletionResult(
                record_id=record.id, usage=usage, cost=record.cost, balance=wallet.balance
            )
        wallet = hold_settle(
            user=plan.user,
            hold_id=plan.hold_id,
            status=status,
            cost=cost,
            description=f"API request {record.id} with key {plan.key_label}",
        )
        record.status = status
        record.prompt_tokens = usage.prompt_tokens
        record.completion_tokens = usage.completion_tokens
        record.cost = cost
        record.duration_ms = round((timezone.now() - record.created_at).total_seconds() * 1000)
        record.save(update_fields=["status", "prompt_tokens", "completion_tokens", "cost", "duration_ms"])
    return CompletionResult(record_id=record.id, usage=usage, cost=cost, balance=wallet.balance)


def completions_lease_renew(record_ids: list) -> None:
    """Vouch for streaming ``/v1/`` requests a while longer (one statement for all of a worker's)."""
    pending = UsageRecord.objects.filter(pk__in=record_ids, status=UsageRecord.Status.PENDING)
    pending.update(lease_expires_at=lease_end())


def completion_outcomes(plan: CompletionPlan) -> AsyncIterator[ReplyOutcome]:
    """A ``/v1/`` completion's outcomes: stored as a usage record, its content nowhere."""
    lease = (completions_lease_renew, plan.record_id)
    return settled_outcomes(plan, finish=completion_finish, lease=lease)
