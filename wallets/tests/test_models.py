"""The database itself refuses what would break a money rule, whatever the code does."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError

from accounts.models import User
from tests.helpers.money import reserve
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import bonus_key, wallet_settle, wallet_top_up

pytestmark = pytest.mark.django_db


def test_raw_update_to_negative_balance_is_rejected(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") - 101)
    wallet.refresh_from_db()
    assert wallet.balance == 100


def test_raw_update_holding_more_than_the_balance_is_rejected(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(held=101)


def test_raw_update_to_negative_held_is_rejected(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(held=-1)


def test_second_wallet_for_a_user_is_rejected(wallet, user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.create(user=user)


def test_second_bonus_entry_is_rejected_by_its_key(wallet, user):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            wallet=wallet, kind="bonus", amount=100, balance_after=200, idempotency_key=bonus_key(user.pk)
        )


@pytest.mark.parametrize(
    ("kind", "amount"),
    [("charge", 5), ("topup", -5), ("bonus", -1), ("refund", -1), ("adjustment", 0), ("charge", 0)],
)
def test_entry_sign_must_match_its_kind(wallet, kind, amount):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(wallet=wallet, kind=kind, amount=amount, balance_after=100)


def test_entry_with_negative_balance_after_is_rejected(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(wallet=wallet, kind="adjustment", amount=-1, balance_after=-1)


def test_ledger_entries_cannot_be_changed_or_deleted(wallet):
    entry = wallet.entries.get()
    entry.amount = 1_000_000
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=1_000_000)
    with pytest.raises(TypeError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.amount == 100


def test_a_hold_can_be_charged_once_only(user):
    hold = reserve(user=user, amount=10)
    wallet = wallet_settle(hold_id=hold.pk, cost=4, description="reply")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(wallet=wallet, kind="charge", amount=-4, balance_after=92, hold=hold)


def test_hold_cannot_charge_more_than_it_holds(wallet):
    hold = Hold.objects.create(wallet=wallet, amount=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(pk=hold.pk).update(status="settled", charged=6, closed_at=hold.created_at)


@pytest.mark.parametrize("amount", [0, -3])
def test_hold_amount_must_be_positive(wallet, amount):
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(wallet=wallet, amount=amount)


def test_open_hold_cannot_carry_a_charge(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(wallet=wallet, amount=5, charged=2)


def test_available_is_balance_less_held(wallet):
    wallet.held = 30
    assert wallet.available == 70
    assert str(wallet) == "Wallet of alice"


def test_deleting_a_user_keeps_its_wallet_ledger_and_holds(user):
    hold = reserve(user=user, amount=10)
    wallet_settle(hold_id=hold.pk, cost=4, description="reply")
    reserve(user=user, amount=10)
    before = (Wallet.objects.count(), LedgerEntry.objects.count(), Hold.objects.count())
    with pytest.raises(ProtectedError), transaction.atomic():
        user.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        User.objects.filter(pk=user.pk).delete()
    assert User.objects.filter(pk=user.pk).exists()
    assert (Wallet.objects.count(), LedgerEntry.objects.count(), Hold.objects.count()) == before


def test_deleting_a_wallet_keeps_its_ledger_and_holds(wallet, user):
    reserve(user=user, amount=10)
    with pytest.raises(ProtectedError), transaction.atomic():
        wallet.delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).delete()
    assert (LedgerEntry.objects.count(), Hold.objects.count()) == (1, 1)


def test_deleting_a_staff_member_keeps_the_entries_they_made(user, staff_user):
    entry = wallet_top_up(user=user, amount=5, reason="goodwill", actor=staff_user)
    with pytest.raises(ProtectedError), transaction.atomic():
        staff_user.delete()
    entry.refresh_from_db()
    assert entry.actor == staff_user


def test_a_user_without_money_rows_can_still_be_deleted(walletless_user):
    walletless_user.delete()
    assert not User.objects.filter(login_id="carol").exists()
