"""Money rules under real concurrency: threads, each on its own PostgreSQL connection.

``transaction=True`` so every service really commits and the row locks are
real; SQLite serialises writers, so these only run on PostgreSQL.
"""

import contextlib

import pytest

from conftest import in_parallel, requires_postgres
from wallets import services
from wallets.errors import InsufficientFunds
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.selectors import wallets_audit
from wallets.tests.conftest import reserve

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

CALLERS = 8  # below the connection pool's default size, so all of them really run at once


def test_parallel_reservations_never_overspend(user):
    outcomes = in_parallel(lambda i: reserve(user=user, amount=30, description=f"reply {i}"))

    holds = [o for o in outcomes if isinstance(o, Hold)]
    refused = [o for o in outcomes if isinstance(o, InsufficientFunds)]
    assert (len(holds), len(refused)) == (3, CALLERS - 3), outcomes
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held, wallet.available) == (100, 90, 10)

    settled = in_parallel(
        lambda i: services.wallet_settle(hold_id=holds[i].pk, cost=30, description="reply"), callers=3
    )
    assert all(isinstance(o, Wallet) for o in settled), settled
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.held) == (10, 0)
    assert list(wallets_audit()) == []


def test_parallel_settles_of_one_hold_charge_once(user):
    hold = reserve(user=user, amount=20)
    outcomes = in_parallel(lambda i: services.wallet_settle(hold_id=hold.pk, cost=15, description="reply"))
    assert all(isinstance(o, Wallet) for o in outcomes), outcomes
    assert LedgerEntry.objects.filter(kind="charge").count() == 1
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held) == (85, 0)


def test_settle_racing_release_closes_the_hold_once(user):
    hold = reserve(user=user, amount=20)

    def close(i: int) -> Wallet:
        if i % 2:
            return services.wallet_release(hold_id=hold.pk)
        return services.wallet_settle(hold_id=hold.pk, cost=20, description="reply")

    in_parallel(close)
    hold.refresh_from_db()
    wallet = Wallet.objects.get(user=user)
    assert wallet.held == 0
    assert wallet.balance == (80 if hold.status == "settled" else 100)
    assert list(wallets_audit()) == []


def test_parallel_top_ups_with_the_same_key_apply_once(user):
    outcomes = in_parallel(
        lambda i: services.wallet_top_up(user=user, amount=50, reason="order 9", idempotency_key="order-9")
    )
    assert all(isinstance(o, LedgerEntry) for o in outcomes), outcomes
    assert len({o.pk for o in outcomes}) == 1
    assert Wallet.objects.get(user=user).balance == 150
    assert LedgerEntry.objects.filter(kind="topup").count() == 1


def test_racing_get_or_create_grants_one_bonus(walletless_user):
    user = walletless_user
    outcomes = in_parallel(lambda i: services.wallet_get_or_create(user=user))
    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    assert sum(created for _, created in outcomes) == 1
    assert {wallet.pk for wallet, _ in outcomes} == {Wallet.objects.get(user=user).pk}
    assert LedgerEntry.objects.filter(wallet__user=user, kind="bonus").count() == 1
    assert Wallet.objects.get(user=user).balance == 100


def test_mixed_traffic_keeps_every_wallet_in_step(user, staff_user):
    def traffic(i: int) -> None:
        for n in range(5):
            try:
                hold = reserve(user=user, amount=7)
            except InsufficientFunds:
                continue
            if (i + n) % 3:
                services.wallet_settle(hold_id=hold.pk, cost=n + i % 7, description="reply")
            else:
                services.wallet_release(hold_id=hold.pk)
        services.wallet_top_up(user=user, amount=3, reason="promo", idempotency_key=f"promo-{i % 4}")
        # Refused while the other callers hold every available credit: also correct.
        with contextlib.suppress(InsufficientFunds):
            services.wallet_adjust(user=user, amount=-1, reason="fee", actor=staff_user)

    outcomes = in_parallel(traffic)
    assert outcomes == [None] * CALLERS
    assert list(wallets_audit()) == []
    assert Wallet.objects.get(user=user).held == 0
    assert LedgerEntry.objects.filter(kind="topup").count() == 4


def test_parallel_first_reservations_of_a_user_without_a_wallet_all_succeed(walletless_user):
    """Each finds no wallet; one creates it (with the bonus), and every reservation still fits."""
    user = walletless_user

    outcomes = in_parallel(lambda i: reserve(user=user, amount=5))

    assert all(isinstance(o, Hold) for o in outcomes), outcomes
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held) == (100, 5 * CALLERS)
    assert list(wallets_audit()) == []
