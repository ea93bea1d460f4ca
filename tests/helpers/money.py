"""Money checks and set-ups: the books balance, what a reply costs, holds made and aged."""

import math
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import wallet_hold


def assert_books_balance(user):
    call_command("audit_wallets")
    assert not Hold.objects.filter(wallet__user=user, status=Hold.Status.OPEN).exists()


def expected_cost(prompt_tokens, completion_tokens, prompt_price=1, completion_price=2):
    return math.ceil((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000)


def age_hold(hold: Hold, *, minutes: int) -> None:
    """Pretend ``hold`` was made ``minutes`` ago."""
    Hold.objects.filter(pk=hold.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def reserve(*, user, amount: int, description: str = "") -> Hold:
    """``wallet_hold`` in its own committed transaction, as the chats app calls it with its rows."""
    with transaction.atomic():
        return wallet_hold(user=user, amount=amount, description=description)


def release_stale_holds(*args: str) -> str:
    """``manage.py release_stale_holds`` with these arguments; what it printed."""
    out = StringIO()
    call_command("release_stale_holds", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refreshed(wallet: Wallet) -> Wallet:
    wallet.refresh_from_db()
    return wallet


def fail_on_ledger_write(monkeypatch) -> None:
    """Every ledger write from now on fails, as a full disk would: what was written with it must roll back."""

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(LedgerEntry, "save", explode)
