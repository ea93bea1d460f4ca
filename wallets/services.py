"""Every write to a wallet.

Locking style: one conditional ``UPDATE`` on the wallet row
(``... SET held = held + x WHERE balance >= held + x``) and a check of the
row count, rather than ``SELECT ... FOR UPDATE`` then ``UPDATE``. Both are
correct; the conditional update holds the row lock for one round trip less
and measured faster on one hot wallet (``bench/wallet_contention.py``,
figures in ``docs/benchmarks.md``). Rows that are not the wallet (a new hold,
a ledger entry) are written *before* the wallet row is touched where the
order allows, so the hot row stays locked as briefly as possible.

Transactions: the outermost money operations (reserve, top-up, refund,
adjust) are ``atomic(durable=True)`` so nobody nests them by accident.
``wallet_get_or_create`` runs inside the user's creation (the ``post_save``
receiver) and ``wallet_settle``/``wallet_release`` inside the chats app's own
transaction with the assistant message, so those three are plain
``atomic()`` blocks.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ValidationFailed
from wallets.errors import HoldNotFound, IdempotencyKeyReused, InsufficientFunds
from wallets.models import Hold, LedgerEntry, Wallet

logger = logging.getLogger(__name__)

DESCRIPTION_MAX = LedgerEntry._meta.get_field("description").max_length
KEY_MAX = LedgerEntry._meta.get_field("idempotency_key").max_length


def bonus_key(user_id: Any) -> str:
    """The bonus entry's idempotency key: a second bonus is a unique violation."""
    return f"bonus:{user_id}"


# --- validation -------------------------------------------------------------


def _whole_credits(value: Any, *, field: str = "amount", positive: bool = True) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(details={field: ["Must be a whole number of credits."]})
    if positive and value <= 0:
        raise ValidationFailed(details={field: ["Must be greater than zero."]})
    if not positive and value == 0:
        raise ValidationFailed(details={field: ["Must not be zero."]})
    return value


def _reason(reason: Any) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed(details={"reason": ["A reason is required."]})
    if len(text) > DESCRIPTION_MAX:
        raise ValidationFailed(details={"reason": [f"At most {DESCRIPTION_MAX} characters."]})
    return text


def _key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > KEY_MAX:
        raise ValidationFailed(
            details={"idempotency_key": [f"A non-empty string of at most {KEY_MAX} characters."]}
        )
    return key


# --- creation and the bonus --------------------------------------------------


def wallet_get_or_create(*, user) -> tuple[Wallet, bool]:
    """The user's wallet, created with the sign-up bonus if it does not exist yet.

    Safe to call any number of times, concurrently: the wallet's unique
    ``user`` and the bonus entry's unique key make a second wallet or bonus a
    database error, which the loser of a race turns into "it exists".
    Not durable: the ``post_save`` receiver calls it inside the transaction
    that creates the user.
    """
    wallet = Wallet.objects.filter(user=user).first()
    if wallet is not None:
        return wallet, False
    bonus = settings.INITIAL_WALLET_BALANCE
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(user=user, balance=bonus)
            if bonus:
                LedgerEntry.objects.create(
                    wallet=wallet,
                    kind=LedgerEntry.Kind.BONUS,
                    amount=bonus,
                    balance_after=bonus,
                    description="Sign-up bonus",
                    idempotency_key=bonus_key(user.pk),
                )
    except IntegrityError:
        wallet = Wallet.objects.filter(user=user).first()
        if wallet is None:
            raise
        return wallet, False
    return wallet, True


# --- reservations ------------------------------------------------------------


def wallet_reserve(*, user, amount: int, description: str = "") -> Hold:
    """Hold ``amount`` credits of the available balance, or raise ``InsufficientFunds``.

    Commits before returning (durable): call the provider afterwards, then
    ``wallet_settle`` or ``wallet_release`` the hold.
    """
    amount = _whole_credits(amount)
    with transaction.atomic(durable=True):
        wallet, _ = wallet_get_or_create(user=user)
        hold = Hold.objects.create(wallet=wallet, amount=amount, description=description[:DESCRIPTION_MAX])
        reserved = Wallet.objects.filter(pk=wallet.pk, balance__gte=F("held") + amount).update(
            held=F("held") + amount, updated_at=timezone.now()
        )
        if not reserved:
            wallet.refresh_from_db(fields=["balance", "held"])
            raise InsufficientFunds(available=wallet.available, required=amount)
    return hold


def wallet_settle(*, hold_id: UUID | str, cost: int, description: str) -> Wallet:
    """Charge ``min(cost, hold.amount)`` as one ``charge`` entry and free the hold.

    The hold is the most the reply may cost, so a larger ``cost`` is capped at
    it. A hold already settled or released is left alone (the call is
    idempotent) and the wallet is returned as it is. Not durable: the chats
    app settles inside its own transaction.
    """
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ValidationFailed(details={"cost": ["Must be a whole number of credits, zero or more."]})
    with transaction.atomic():
        wallet, _ = _hold_close(hold_id=hold_id, cost=cost, description=description)
    return wallet


def wallet_release(*, hold_id: UUID | str) -> Wallet:
    """Free the hold and charge nothing; idempotent like ``wallet_settle``."""
    with transaction.atomic():
        wallet, _ = _hold_close(hold_id=hold_id, cost=None, description="")
    return wallet


def holds_release_stale(*, older_than: timedelta) -> list[Hold]:
    """Release every hold still open ``older_than`` after it was made.

    A hold that a live process settles meanwhile is left to it. Each hold is
    released in its own short transaction, so one hot wallet is never locked
    for the whole sweep.
    """
    cutoff = timezone.now() - older_than
    stale = Hold.objects.filter(status=Hold.Status.OPEN, created_at__lt=cutoff).values_list("pk", flat=True)
    released = []
    for hold_id in list(stale):
        with transaction.atomic(durable=True):
            _, closed = _hold_close(hold_id=hold_id, cost=None, description="")
        if closed:
            released.append(hold_id)
    if released:
        logger.warning("Released %d stale hold(s): %s", len(released), ", ".join(map(str, released)))
    return list(Hold.objects.filter(pk__in=released).order_by("created_at"))


def _hold_close(*, hold_id: UUID | str, cost: int | None, description: str) -> tuple[Wallet, bool]:
    """Settle (``cost`` an int) or release (``cost`` None) an open hold.

    Returns the wallet and whether this call closed the hold. The hold is
    claimed with a conditional update on its status, so of two racing calls
    exactly one charges.
    """
    try:
        hold = Hold.objects.only("wallet_id", "amount", "status").get(pk=hold_id)
    except (Hold.DoesNotExist, DjangoValidationError):  # the latter: not a UUID at all
        raise HoldNotFound() from None
    if hold.status != Hold.Status.OPEN:
        return Wallet.objects.get(pk=hold.wallet_id), False

    charge = 0 if cost is None else min(cost, hold.amount)
    now = timezone.now()
    claimed = Hold.objects.filter(pk=hold.pk, status=Hold.Status.OPEN).update(
        status=Hold.Status.RELEASED if cost is None else Hold.Status.SETTLED, charged=charge, closed_at=now
    )
    if not claimed:  # another process closed it between our read and our update
        return Wallet.objects.get(pk=hold.wallet_id), False

    Wallet.objects.filter(pk=hold.wallet_id).update(
        balance=F("balance") - charge, held=F("held") - hold.amount, updated_at=now
    )
    wallet = Wallet.objects.get(pk=hold.wallet_id)
    if charge:
        LedgerEntry.objects.create(
            wallet=wallet,
            kind=LedgerEntry.Kind.CHARGE,
            amount=-charge,
            balance_after=wallet.balance,
            description=description[:DESCRIPTION_MAX],
            hold_id=hold.pk,
        )
    return wallet, True


# --- credits in and staff corrections ----------------------------------------


@dataclass(frozen=True)
class _Entry:
    kind: str
    amount: int
    description: str
    idempotency_key: str | None
    actor: Any


def wallet_top_up(
    *, user, amount: int, reason: str, idempotency_key: str | None = None, actor=None
) -> LedgerEntry:
    """Credit ``amount`` (> 0) with a reason.

    With an ``idempotency_key`` the top-up applies once: a replay returns the
    original entry and credits nothing; the same key with another user,
    amount or kind is a ``Conflict`` (409).
    """
    entry = _Entry(
        LedgerEntry.Kind.TOPUP, _whole_credits(amount), _reason(reason), _key(idempotency_key), actor
    )
    return _ledger_append(user=user, entry=entry)


def wallet_refund(
    *, user, amount: int, reason: str, idempotency_key: str | None = None, actor=None
) -> LedgerEntry:
    """Give back ``amount`` (> 0) credits, e.g. for a reply that went wrong."""
    entry = _Entry(
        LedgerEntry.Kind.REFUND, _whole_credits(amount), _reason(reason), _key(idempotency_key), actor
    )
    return _ledger_append(user=user, entry=entry)


def wallet_adjust(
    *, user, amount: int, reason: str, actor, idempotency_key: str | None = None
) -> LedgerEntry:
    """A staff correction: ``amount`` signed and non-zero, never below the held credits."""
    entry = _Entry(
        LedgerEntry.Kind.ADJUSTMENT,
        _whole_credits(amount, positive=False),
        _reason(reason),
        _key(idempotency_key),
        actor,
    )
    return _ledger_append(user=user, entry=entry)


def _ledger_append(*, user, entry: _Entry) -> LedgerEntry:
    try:
        with transaction.atomic(durable=True):
            if entry.idempotency_key and (original := _replay(user=user, entry=entry)):
                return original
            wallet, _ = wallet_get_or_create(user=user)
            changed = Wallet.objects.filter(pk=wallet.pk)
            if entry.amount < 0:
                changed = changed.filter(balance__gte=F("held") - entry.amount)
            if not changed.update(balance=F("balance") + entry.amount, updated_at=timezone.now()):
                wallet.refresh_from_db(fields=["balance", "held"])
                raise InsufficientFunds(available=wallet.available, required=-entry.amount)
            wallet.refresh_from_db(fields=["balance", "held", "updated_at"])
            return LedgerEntry.objects.create(
                wallet=wallet,
                kind=entry.kind,
                amount=entry.amount,
                balance_after=wallet.balance,
                description=entry.description,
                idempotency_key=entry.idempotency_key,
                actor=entry.actor,
            )
    except IntegrityError:
        # Lost a race to the same key: everything above rolled back; answer as a replay.
        if entry.idempotency_key and (original := _replay(user=user, entry=entry)):
            return original
        raise


def _replay(*, user, entry: _Entry) -> LedgerEntry | None:
    original = (
        LedgerEntry.objects.select_related("wallet").filter(idempotency_key=entry.idempotency_key).first()
    )
    if original is None:
        return None
    if original.wallet.user_id != user.pk or original.kind != entry.kind or original.amount != entry.amount:
        raise IdempotencyKeyReused(details={"idempotency_key": ["Already used for a different operation."]})
    return original
