"""The wallet after a client's run: every request it made recorded once and charged exactly once."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from chats.models import UsageRecord
from tests.helpers.money import assert_books_balance, expected_cost
from wallets.models import Hold, LedgerEntry, Wallet


@dataclass(frozen=True)
class Seen:
    """Token counts a client was told for one request (its ``usage``)."""

    prompt_tokens: int
    completion_tokens: int


def assert_charged_once_each(user, category, *, requests: int, seen: list[Seen] | None = None) -> list:
    """``requests`` usage records, all complete, each charged exactly once at the category's model's prices.

    The balance is the sign-up bonus less the sum of those charges (no other entry), no hold is
    left open, and the audit passes. ``seen``, in request order, is the usage the client was told:
    it must be what was recorded and charged.
    """
    records = list(UsageRecord.objects.filter(user=user).order_by("created_at", "id"))
    assert len(records) == requests, [(r.status, r.prompt_tokens, r.completion_tokens) for r in records]
    for record in records:
        assert record.status == UsageRecord.Status.COMPLETE, record.status
        assert record.cost == expected_cost(
            record.prompt_tokens,
            record.completion_tokens,
            category.model.prompt_price,
            category.model.completion_price,
        ), (record.prompt_tokens, record.completion_tokens, record.cost)
        assert record.cost > 0
    if seen is not None:
        assert len(seen) == requests
        told = [(s.prompt_tokens, s.completion_tokens) for s in seen]
        recorded = [(r.prompt_tokens, r.completion_tokens) for r in records]
        assert told == recorded, (told, recorded)

    entries = list(LedgerEntry.objects.filter(wallet__user=user))
    charges = [entry for entry in entries if entry.kind == LedgerEntry.Kind.CHARGE]
    bonus = [entry for entry in entries if entry.kind == LedgerEntry.Kind.BONUS]
    assert len(entries) == len(charges) + len(bonus), [(e.kind, e.amount) for e in entries]
    assert sum(entry.amount for entry in bonus) == settings.INITIAL_WALLET_BALANCE
    for record in records:
        mine = [charge for charge in charges if str(record.id) in charge.description]
        assert [charge.amount for charge in mine] == [-record.cost], (record.id, [c.amount for c in mine])
    assert len(charges) == requests

    wallet = Wallet.objects.get(user=user)
    assert wallet.balance == settings.INITIAL_WALLET_BALANCE - sum(record.cost for record in records)
    assert wallet.held == 0
    assert not Hold.objects.filter(wallet=wallet, status=Hold.Status.OPEN).exists()
    assert_books_balance(user)
    return records
