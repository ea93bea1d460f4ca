"""Writes for ``/v1/``: a completion's reservation and settlement, as a chat reply's, recorded as a
usage record."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from chats.catalogue.models import CatalogueModel
from chats.errors import ModelNotAllowed, ModelNotFound, UnsupportedParameter
from chats.llm import Usage
from chats.models import UsageRecord
from chats.replies import keepalive
from chats.replies.charges import request_charge_description
from chats.replies.outcomes import Delta, ReplyOutcome, settled_outcomes
from chats.replies.pricing import prompt_tokens_upper_bound, reply_cost
from chats.replies.prompt import with_system_prompt
from chats.replies.services import (
    Reservation,
    Settlement,
    hold_settle,
    lease_end,
    max_output_capped,
    reserve_within_means,
    usage_and_cost,
)
from chats.replies.slots import reply_slot_give_back, reply_slots_renew
from chats.v1.selectors import Requested, api_key_spent, model_requested
from chats.v1.wire import CompletionRequest, EmbeddingRequest
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
    *, user, api_key, request: CompletionRequest, record_id: UUID | None = None
) -> CompletionPlan:
    """Reserve the most a ``/v1/`` request can cost and record it, in one commit, before the provider.

    ``request.model`` names a category (its system prompt goes first, its catalogue model's
    prices apply) or a catalogue model. The most it can cost covers the whole request as sent
    (tools and schemas included; each media part at the model's bound, by default
    ``MEDIA_PART_TOKENS``) and ``max_tokens`` (at most the model's ``max_output_tokens``) for
    each of its ``n`` choices; with no ``max_tokens`` a wallet that cannot pay for the longest
    reply gets a shorter one. The model's ``drop_params`` are not forwarded. The conversation is
    the caller's and is not stored.
    """
    requested = _requested(request.model, api_key=api_key)
    model = requested.served.model
    _check_capabilities(model, request)
    system = with_system_prompt(requested.category, []) if requested.category is not None else []
    prompt = [*(message.as_dict() for message in system), *request.messages]
    system_bytes = sum(len(message.content.encode()) for message in system)
    prompt_tokens = (
        prompt_tokens_upper_bound(request.prompt_bytes + system_bytes, len(prompt))
        + request.media_parts * model.media_part_bound
    )
    options = _forwarded(request.options, model)
    options = options if request.n == 1 else {**options, "n": request.n}

    def reserve(max_tokens: int, held: int) -> CompletionPlan:
        return _record_and_hold(
            user=user,
            api_key=api_key,
            requested=requested,
            held=held,
            prompt=prompt,
            max_tokens=max_tokens,
            choices=request.n,
            options=options,
            record_id=record_id,
        )

    return reserve_within_means(
        reserve,
        model=model,
        prompt_tokens=prompt_tokens,
        max_tokens=max_output_capped(model, request.max_tokens),
        choices=request.n,
        asked=request.max_tokens is not None,
    )


def embedding_begin(*, user, api_key, request: EmbeddingRequest) -> CompletionPlan:
    """Reserve what embedding ``request.input`` can cost (its prompt tokens at the model's prompt
    price, one byte a token at most) and record it, as a completion is."""
    requested = _requested(request.model, api_key=api_key)
    model = requested.served.model
    held = reply_cost(model=model, prompt_tokens=request.tokens_bound, completion_tokens=0)
    return _record_and_hold(
        user=user,
        api_key=api_key,
        requested=requested,
        held=held,
        prompt=[],
        max_tokens=0,
        options=_forwarded(request.options, model),
    )


def embedding_usage(answer: dict[str, Any], *, tokens_bound: int) -> Usage:
    """What embedding used: the prompt tokens the upstream reported, or, when it reported none
    (or nonsense), the most the input can be, which is what was held."""
    reported = (answer.get("usage") or {}).get("prompt_tokens")
    valid = isinstance(reported, int) and not isinstance(reported, bool) and reported >= 0
    return Usage(prompt_tokens=reported if valid else tokens_bound, completion_tokens=0)


def _requested(name: str, *, api_key) -> Requested:
    """The model ``name`` names, if it exists and the key may use it: a key limited to models
    takes a model by its id or by the slug of a category of it."""
    requested = model_requested(name=name)
    if requested is None:
        raise ModelNotFound(f"The model {name!r} does not exist.", details={"model": name})
    allowed = api_key.allowed_models if api_key is not None else []
    if allowed and name not in allowed and requested.served.model.public_id not in allowed:
        raise ModelNotAllowed(
            f"This API key may not use the model {name!r}.", details={"model": name, "allowed": allowed}
        )
    return requested


def _check_capabilities(model: CatalogueModel, request: CompletionRequest) -> None:
    """Refuse, before anything is reserved, what the catalogue says the model cannot do: no
    upstream is asked for a tool call, an image or a JSON schema it would ignore or fail on."""
    options = request.options
    if options.get("tools") and not model.supports_tools:
        raise UnsupportedParameter(f"The model {model.public_id!r} does not call tools.", param="tools")
    if request.media_parts and not model.supports_images:
        raise UnsupportedParameter(
            f"The model {model.public_id!r} does not read images, audio or files.", param="messages"
        )
    response_format = options.get("response_format")
    wants_schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    if wants_schema and not model.supports_json_schema:
        raise UnsupportedParameter(
            f"The model {model.public_id!r} does not follow a JSON schema.", param="response_format"
        )


def _forwarded(options: dict[str, Any], model: CatalogueModel) -> dict[str, Any]:
    """``options`` without the parameters the model's upstream must not be sent (``drop_params``)."""
    if not model.drop_params:
        return options
    return {name: value for name, value in options.items() if name not in model.drop_params}


def _record_and_hold(
    *, user, api_key, requested: Requested, held: int, record_id: UUID | None = None, **asked: Any
) -> CompletionPlan:
    """The pending usage record and its hold, in one commit; what the upstream is asked is ``asked``."""
    hold_id = uuid4() if held > 0 else None
    key_label = f"{api_key.prefix} ({api_key.name})" if api_key.name else api_key.prefix
    with transaction.atomic(durable=True):
        record = UsageRecord(
            id=record_id or uuid4(),
            user=user,
            api_key=api_key,
            category=requested.category,
            model=requested.served.model,
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
        category=requested.category,
        catalogue_model=requested.served.model,
        routes=requested.served.routes_to_try(),
        **asked,
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
    *,
    plan: CompletionPlan,
    content: str,
    usage: Usage | None,
    status: str,
    finish_reason: str = "",
    deployment: str = "",
) -> CompletionResult:
    """Record what a ``/v1/`` request used and settle its hold, as ``reply_finish`` does for a chat reply.

    The ledger entry names the key. The content (all that was generated, to estimate
    the usage an upstream did not report) is not stored, nor is the finish reason.
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
            description=request_charge_description(
                record_id=record.id,
                key_label=plan.key_label,
                model=plan.catalogue_model.public_id,
                category_slug=plan.category.slug if plan.category is not None else "",
            ),
        )
        record.status = status
        record.prompt_tokens = usage.prompt_tokens
        record.completion_tokens = usage.completion_tokens
        record.cost = cost
        record.deployment = deployment
        record.duration_ms = round((timezone.now() - record.created_at).total_seconds() * 1000)
        fields = ["status", "prompt_tokens", "completion_tokens", "cost", "deployment", "duration_ms"]
        record.save(update_fields=fields)
    return CompletionResult(record_id=record.id, usage=usage, cost=cost, balance=wallet.balance)


def completions_lease_renew(record_ids: list) -> None:
    """Vouch for streaming ``/v1/`` requests a while longer (one statement for all of a worker's)."""
    pending = UsageRecord.objects.filter(pk__in=record_ids, status=UsageRecord.Status.PENDING)
    pending.update(lease_expires_at=lease_end())


async def completion_outcomes(plan: CompletionPlan) -> AsyncIterator[ReplyOutcome]:
    """A ``/v1/`` completion's outcomes: stored as a usage record, its content nowhere.

    It runs in one of its user's reply slots (taken by the view under the record's id, as a chat
    reply's): ``MAX_CONCURRENT_REPLIES`` counts both. The slot is given back before the last
    outcome is yielded, so a client that stops reading there leaves no slot behind.
    """
    slot = (plan.user.pk, str(plan.record_id))
    keepalive.keep(reply_slots_renew, slot)
    try:
        lease = (completions_lease_renew, plan.record_id)
        async for outcome in settled_outcomes(plan, finish=completion_finish, lease=lease, chunks=True):
            if not isinstance(outcome, Delta):
                await _slot_give_back(slot)
            yield outcome
    finally:
        await _slot_give_back(slot)


async def _slot_give_back(slot: tuple) -> None:
    keepalive.release(reply_slots_renew, slot)
    user_id, token = slot
    await sync_to_async(reply_slot_give_back, thread_sensitive=False)(user_id=user_id, token=token)
