"""Reads of wallets: a user's wallet and ledger, and the audit operators run."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from wallets.models import CodeBatch, Hold, LedgerEntry, Wallet


def wallet_for_user(*, user) -> Wallet:
    """The user's wallet as stored, to read its ``balance``/``held``/``available``; never writes.

    One query. For other apps (the chats app reads the balance after settling
    a reply) instead of calling the write service ``wallet_get_or_create``. A
    user with no wallet yet (stored without the ``post_save`` receiver, e.g.
    by a data load) gets an unsaved empty ``Wallet``: balance 0, what that
    user can spend until the wallet is made.
    """
    return Wallet.objects.filter(user=user).first() or Wallet(user=user)


def ledger_entries_for(*, user) -> QuerySet[LedgerEntry]:
    """The user's ledger; the paginator orders it newest first."""
    return LedgerEntry.objects.filter(wallet__user=user)


def holds_stale(*, older_than: timedelta) -> QuerySet[Hold]:
    cutoff = timezone.now() - older_than
    return Hold.objects.filter(status=Hold.Status.OPEN, created_at__lt=cutoff).select_related("wallet__user")


@dataclass(frozen=True)
class WalletMismatch:
    wallet_id: int
    login_id: str
    problems: list[str]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id} ({self.login_id}): " + "; ".join(self.problems)


def _total(queryset: QuerySet, field: str) -> Coalesce:
    summed = queryset.order_by().values("wallet").annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(summed), Value(0))


def wallets_audit() -> Iterator[WalletMismatch]:
    """Every wallet whose cached numbers disagree with its rows, one query in all.

    Checked: balance = sum of ledger amounts; balance = the last entry's
    ``balance_after``; available (balance - held) not negative; held = sum of
    open holds. The database constraints make the last two unreachable, so
    seeing them means the constraints were dropped or bypassed.
    """
    last_entry = LedgerEntry.objects.filter(wallet=OuterRef("pk")).order_by("-pk")
    wallets = (
        Wallet.objects.annotate(
            ledger_total=_total(LedgerEntry.objects.filter(wallet=OuterRef("pk")), "amount"),
            open_holds=_total(Hold.objects.filter(wallet=OuterRef("pk"), status=Hold.Status.OPEN), "amount"),
            last_balance=Coalesce(Subquery(last_entry.values("balance_after")[:1]), Value(0)),
        )
        .filter(
            ~Q(balance=F("ledger_total"))
            | ~Q(balance=F("last_balance"))
            | ~Q(held=F("open_holds"))
            | Q(balance__lt=F("held"))
        )
        .select_related("user")
        .order_by("pk")
    )
    for wallet in wallets.iterator():
        problems = []
        if wallet.balance != wallet.ledger_total:
            problems.append(f"balance {wallet.balance} != ledger sum {wallet.ledger_total}")
        if wallet.balance != wallet.last_balance:
            problems.append(f"balance {wallet.balance} != last entry's balance_after {wallet.last_balance}")
        if wallet.balance < wallet.held:
            problems.append(f"available {wallet.balance - wallet.held} is negative")
        if wallet.held != wallet.open_holds:
            problems.append(f"held {wallet.held} != open holds {wallet.open_holds}")
        yield WalletMismatch(wallet.pk, wallet.user.login_id, problems)


def code_batches_with_counts() -> QuerySet[CodeBatch]:
    """Batches with ``redeemed`` and ``voided`` counts of their codes, in one query."""
    return CodeBatch.objects.select_related("created_by").annotate(
        redeemed=Count("codes", filter=Q(codes__redeemed_at__isnull=False)),
        voided=Count("codes", filter=Q(codes__voided_at__isnull=False)),
    )


def spend_period_start(period: str, *, now=None):
    """The start (UTC) of the day or month that ``now`` is in: caps count from there."""
    now = (now or timezone.now()).astimezone(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.replace(day=1) if period == "month" else start


def credits_charged(*, wallet_id, since) -> int:
    """Credits charged from a wallet since ``since`` (settled replies and requests)."""
    charged = LedgerEntry.objects.filter(
        wallet_id=wallet_id, kind=LedgerEntry.Kind.CHARGE, created_at__gte=since
    )
    return -(charged.aggregate(total=Sum("amount"))["total"] or 0)
