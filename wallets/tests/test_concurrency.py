"""Money rules under real concurrency: threads, each on its own PostgreSQL connection.

``transaction=True`` so every service really commits and the row locks are
real; SQLite serialises writers, so these only run on PostgreSQL.
"""

import contextlib
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from rest_framework_simplejwt.tokens import RefreshToken

from tests.helpers.concurrency import in_parallel, requires_postgres
from tests.helpers.money import reserve
from wallets import services
from wallets.codes import code_batch_create, code_batch_void, code_redeem
from wallets.errors import InsufficientFunds, InvalidCode
from wallets.models import Hold, LedgerEntry, RedemptionCode, Wallet
from wallets.selectors import wallets_audit

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


# --- redemption codes ----------------------------------------------------------


def test_twenty_concurrent_redemptions_of_one_code_credit_once(make_user):
    users = [make_user(f"redeemer-{i}") for i in range(20)]
    _, [code] = code_batch_create(name="Launch", count=1, credits=50)

    outcomes = in_parallel(lambda i: code_redeem(user=users[i % 4], code=code), callers=20)

    entries = [o for o in outcomes if isinstance(o, LedgerEntry)]
    refused = [o for o in outcomes if isinstance(o, InvalidCode)]
    assert (len(entries), len(refused)) == (1, 19), outcomes
    assert LedgerEntry.objects.filter(kind="topup").count() == 1
    assert sum(Wallet.objects.filter(user__in=users).values_list("balance", flat=True)) == 20 * 100 + 50
    call_command("audit_wallets", stdout=StringIO())


def test_twenty_concurrent_requests_with_one_code_credit_once(live_asgi_url, make_user, settings):
    """Through the real endpoint under uvicorn: each request on its own connection, as from many workers."""
    settings.REDEEM_THROTTLE_RATE = "100/min"  # every request comes from 127.0.0.1
    users = [make_user(f"client-{i}") for i in range(20)]
    tokens = [str(RefreshToken.for_user(user).access_token) for user in users]
    _, [code] = code_batch_create(name="Launch", count=1, credits=50)

    def redeem(i: int) -> tuple[int, dict]:
        response = httpx.post(
            f"{live_asgi_url}/api/wallet/redeem/",
            json={"code": code},
            headers={"Authorization": f"Bearer {tokens[i]}"},
            timeout=30,
        )
        return response.status_code, response.json()

    outcomes = in_parallel(redeem, callers=20)

    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] + [400] * 19, outcomes
    assert all(body["error"]["code"] == "invalid_code" for status, body in outcomes if status == 400)
    assert [body for status, body in outcomes if status == 200] == [{"balance": 150}]
    assert LedgerEntry.objects.filter(kind="topup").count() == 1
    call_command("audit_wallets", stdout=StringIO())


def test_a_void_racing_redemptions_leaves_each_code_redeemed_or_voided(user, other_user, staff_user):
    batch, codes = code_batch_create(name="x", count=4, credits=5)

    def one(i: int):
        if i == 0:
            return code_batch_void(batch=batch, actor=staff_user)
        return code_redeem(user=user if i % 2 else other_user, code=codes[(i - 1) % 4])

    outcomes = in_parallel(one)

    redeemed = RedemptionCode.objects.filter(redeemed_at__isnull=False).count()
    voided = RedemptionCode.objects.filter(voided_at__isnull=False).count()
    assert (redeemed + voided, voided) == (4, outcomes[0]), outcomes
    assert LedgerEntry.objects.filter(kind="topup").count() == redeemed
    assert all(isinstance(o, LedgerEntry | InvalidCode) for o in outcomes[1:]), outcomes
    call_command("audit_wallets", stdout=StringIO())
