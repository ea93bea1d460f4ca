"""Every write to a wallet; the redemption codes that pay into it are in ``wallets.codes``.

Locking style: one conditional ``UPDATE`` of the wallet row that returns the
row it changed (``... SET held = held + x WHERE balance - held >= x
RETURNING ...``), rather than ``SELECT ... FOR UPDATE`` then ``UPDATE``. Both
are correct; the conditional update keeps the hot row locked for fewer round
trips. Rows that are not the wallet (a new hold, the claim of a hold)
are written *before* the wallet row is touched, so the wallet stays locked
only from its ``UPDATE`` to the commit: the ``UPDATE``, at most one ledger
``INSERT``, and ``COMMIT``.

Transactions: the outermost money operations (top-up, refund, adjust, and
``wallets.codes``' redeeming, making and voiding of codes) are
``atomic(durable=True)`` so nobody nests them by accident.
``wallet_get_or_create`` runs inside the user's creation (the ``post_save``
receiver), ``wallet_hold`` inside the chats app's transaction that stores the
question and the pending reply, and ``wallet_settle``/``wallet_release``
inside its transaction with the finished reply, so those four are not durable.

Amounts: whole credits from 1 (or -1 for an adjustment) up to
``CREDITS_MAX``, the range of the money columns; a credit that would take a
balance past it is refused too. Both are ``ValidationFailed``, never a
database error (the checks are in ``wallets.validation``, shared with the codes).

Idempotency keys: a key given by a caller (an operator's ``--key``, the admin
form's hidden key) is stored in the ``caller`` scope, the bonus's key in the
``system`` scope, unique per scope: no caller key can take a key the system
will need, whatever its text.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.db.rows import columns, fetch_one, insert, instance_from_row, table
from core.errors import ValidationFailed
from wallets import selectors
from wallets.errors import HoldNotFound, IdempotencyKeyReused, InsufficientFunds, SpendCapReached
from wallets.models import CREDITS_MAX, Hold, LedgerEntry, Wallet
from wallets.validation import DESCRIPTION_MAX, _key, _reason, _whole_credits


def bonus_key(user_id: Any) -> str:
    """The bonus entry's key, in the ``system`` scope: a second bonus is a unique violation."""
    return f"bonus:{user_id}"


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
                    key_scope=LedgerEntry.KeyScope.SYSTEM,
                )
    except IntegrityError:
        wallet = Wallet.objects.filter(user=user).first()
        if wallet is None:
            raise
        return wallet, False
    return wallet, True


# --- reservations ------------------------------------------------------------


def wallet_hold(*, user, amount: int, description: str = "", hold_id: UUID | None = None) -> Hold:
    """Hold ``amount`` credits of the available balance, or raise ``InsufficientFunds``.

    Runs inside the caller's transaction, which must commit before the
    provider is called; afterwards ``wallet_settle`` or ``wallet_release``
    the hold. The caller stores its other rows with the hold in that one
    commit (the chats app: the question, the pending reply), and
    ``InsufficientFunds`` rolls them back with it. The wallet row stays locked
    from here to the caller's commit, so call it late. ``hold_id`` lets the
    caller store the hold's id before the hold exists.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("wallet_hold() needs the caller's open transaction (transaction.atomic()).")
    amount = _whole_credits(amount)
    # The wallet by its user: no SELECT for its id first, in the common case
    # where it exists and can pay. None means it cannot pay, or does not exist
    # yet: then make sure it exists (another request may be creating it right
    # now) and try once more before refusing.
    reserved = _wallet_move(user_id=user.pk, held=amount)
    if reserved is None:
        wallet, _ = wallet_get_or_create(user=user)
        reserved = _wallet_move(wallet_id=wallet.pk, held=amount)
        if reserved is None:
            wallet.refresh_from_db(fields=["balance", "held"])
            raise InsufficientFunds(available=wallet.available, required=amount)
    _check_spend_caps(reserved, amount)
    hold = Hold(
        id=hold_id or uuid4(), wallet=reserved, amount=amount, description=description[:DESCRIPTION_MAX]
    )
    insert([hold])  # every reply's: without the ORM's compiling of the INSERT
    return hold


def wallet_set_spend_caps(*, wallet: Wallet, daily: int | None, monthly: int | None) -> None:
    """Set a wallet's own caps (None: the defaults of the settings). Only these two columns are
    written: an instance read earlier must never write its balance back."""
    for field, cap in (("daily_spend_cap", daily), ("monthly_spend_cap", monthly)):
        if cap is not None:
            _whole_credits(cap, field=field)
    Wallet.objects.filter(pk=wallet.pk).update(daily_spend_cap=daily, monthly_spend_cap=monthly)


def _check_spend_caps(wallet: Wallet, amount: int) -> None:
    """Refuse a hold that would take the day's or the month's spending past its cap.

    Spent = credits charged since the period began + every open hold (reserved
    credits count as spent until settled). Checked after the wallet row is
    locked by this hold's ``UPDATE``, so concurrent reservations of one user
    are counted one after the other and no burst crosses a cap.
    """
    caps = [
        ("day", wallet.daily_spend_cap or settings.DEFAULT_DAILY_SPEND_CAP),
        ("month", wallet.monthly_spend_cap or settings.DEFAULT_MONTHLY_SPEND_CAP),
    ]
    for period, cap in caps:
        if cap is None:
            continue
        since = selectors.spend_period_start(period)
        spent = selectors.credits_charged(wallet_id=wallet.pk, since=since) + wallet.held - amount
        if spent + amount > cap:
            raise SpendCapReached(details={"cap": cap, "period": period, "spent": spent, "required": amount})


def wallet_settle(*, hold_id: UUID | str, cost: int, description: str) -> Wallet:
    """Charge ``min(cost, hold.amount)`` as one ``charge`` entry and free the hold.

    The hold is the most the reply may cost, so a larger ``cost`` is capped at
    it. A hold already settled or released is left alone (the call is
    idempotent) and the wallet is returned as it is. Not durable: the chats
    app settles inside its own transaction.
    """
    cost = _whole_credits(cost, field="cost", zero=True)
    with transaction.atomic():
        wallet, _ = _hold_close(hold_id=hold_id, cost=cost, description=description)
    return wallet


def wallet_release(*, hold_id: UUID | str) -> Wallet:
    """Free the hold and charge nothing; idempotent like ``wallet_settle``."""
    with transaction.atomic():
        wallet, _ = _hold_close(hold_id=hold_id, cost=None, description="")
    return wallet


def _hold_close(*, hold_id: UUID | str, cost: int | None, description: str) -> tuple[Wallet, bool]:
    """Settle (``cost`` an int) or release (``cost`` None) an open hold.

    Returns the wallet and whether this call closed the hold. The hold is
    claimed by a conditional update of its status, so of two racing calls
    exactly one charges; the wallet row is locked only after that.
    """
    claimed = _hold_claim(hold_id=hold_id, cost=cost)
    if claimed is None:  # already settled or released (or never existed)
        wallet_id = Hold.objects.filter(pk=hold_id).values_list("wallet_id", flat=True).first()
        if wallet_id is None:
            raise HoldNotFound()
        return Wallet.objects.get(pk=wallet_id), False
    wallet_id, amount, charge = claimed
    wallet = _wallet_move(wallet_id=wallet_id, balance=-charge, held=-amount)
    if charge:
        LedgerEntry.objects.create(
            wallet=wallet,
            kind=LedgerEntry.Kind.CHARGE,
            amount=-charge,
            balance_after=wallet.balance,
            description=description[:DESCRIPTION_MAX],
            hold_id=_uuid(hold_id),
        )
    return wallet, True


# --- the two statements that move credits --------------------------------------
#
# Hand-written because they need ``UPDATE ... RETURNING`` (PostgreSQL, and
# SQLite since 3.35), which the ORM's ``update()`` does not offer: the row
# comes back from the statement that changed it, so the wallet row stays
# locked for one round trip less than with an ``UPDATE`` then a ``SELECT``.


def _uuid(hold_id: UUID | str) -> UUID:
    try:
        return Hold._meta.pk.to_python(hold_id)
    except DjangoValidationError:  # not a UUID at all
        raise HoldNotFound() from None


def _hold_claim(*, hold_id: UUID | str, cost: int | None) -> tuple[int, int, int] | None:
    """Close an open hold: ``(wallet_id, amount, charged)``, or None if it was not open."""
    sql = (
        f"UPDATE {table(Hold)} SET status = %s, closed_at = %s,"
        " charged = CASE WHEN amount < %s THEN amount ELSE %s END"
        " WHERE id = %s AND status = %s RETURNING wallet_id, amount, charged"
    )
    status = Hold.Status.RELEASED if cost is None else Hold.Status.SETTLED
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    hold_pk = Hold._meta.pk.get_db_prep_value(_uuid(hold_id), connection)
    return fetch_one(sql, [status, now, cost or 0, cost or 0, hold_pk, Hold.Status.OPEN])


def _wallet_move(
    *, wallet_id: int | None = None, user_id: int | None = None, balance: int = 0, held: int = 0
) -> Wallet | None:
    """Add ``balance`` and ``held`` to the wallet unless available credit would go negative.

    The wallet is ``wallet_id``, or the one of ``user_id`` (unique per user).
    One conditional ``UPDATE`` (the wallet row is locked from here to the
    commit); returns the updated wallet, or None when it would overdraw, or
    take the balance past ``CREDITS_MAX`` (or does not exist).

    The condition does its arithmetic in Python, so no expression in SQL can
    leave the column's range (PostgreSQL would raise, SQLite turn it into a
    float): ``balance - held`` lies between 0 and the balance, and the two
    bounds are computed here from amounts already checked to be in range.
    """
    column, key = ("id", wallet_id) if wallet_id is not None else ("user_id", user_id)
    fields = Wallet._meta.concrete_fields
    sql = (
        f"UPDATE {table(Wallet)} SET balance = balance + %s, held = held + %s, updated_at = %s"
        f" WHERE {column} = %s AND balance - held >= %s AND balance <= %s"
        f" RETURNING {columns(fields)}"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    needed, ceiling = held - balance, CREDITS_MAX - max(balance, 0)
    row = fetch_one(sql, [balance, held, now, key, needed, ceiling])
    return None if row is None else instance_from_row(Wallet, fields, row)


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

    With an ``idempotency_key`` (the caller's, kept apart from the system's
    keys) the top-up applies once: a replay returns the original entry and
    credits nothing; the same key with another user, amount or kind is
    ``IdempotencyKeyReused`` (a ``Conflict``, 409).
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
            return _ledger_write(user=user, entry=entry)
    except IntegrityError:
        # Lost a race to the same key: everything above rolled back; answer as a replay.
        if entry.idempotency_key and (original := _replay(user=user, entry=entry)):
            return original
        raise


def _ledger_write(*, user, entry: _Entry, key_scope: str = LedgerEntry.KeyScope.CALLER) -> LedgerEntry:
    """Move the wallet's balance and append its entry, inside the caller's transaction.

    Private to the app rather than to this module: ``wallets.codes`` credits a
    redemption through it, in its own transaction and with a ``system`` key.
    """
    wallet, _ = wallet_get_or_create(user=user)
    moved = _wallet_move(wallet_id=wallet.pk, balance=entry.amount)
    if moved is None:
        wallet.refresh_from_db(fields=["balance", "held"])
        if entry.amount > 0:  # only a credit can be refused: it would pass the ceiling
            raise ValidationFailed(
                details={
                    "amount": [
                        f"The balance would pass {CREDITS_MAX} credits, the most a wallet holds "
                        f"(it holds {wallet.balance})."
                    ]
                }
            )
        raise InsufficientFunds(available=wallet.available, required=-entry.amount)
    return LedgerEntry.objects.create(
        wallet=moved,
        kind=entry.kind,
        amount=entry.amount,
        balance_after=moved.balance,
        description=entry.description,
        idempotency_key=entry.idempotency_key,
        key_scope=key_scope if entry.idempotency_key else "",
        actor=entry.actor,
    )


def _replay(*, user, entry: _Entry) -> LedgerEntry | None:
    original = (
        LedgerEntry.objects.select_related("wallet")
        .filter(key_scope=LedgerEntry.KeyScope.CALLER, idempotency_key=entry.idempotency_key)
        .first()
    )
    if original is None:
        return None
    if original.wallet.user_id != user.pk or original.kind != entry.kind or original.amount != entry.amount:
        raise IdempotencyKeyReused(details={"idempotency_key": ["Already used for a different operation."]})
    return original
