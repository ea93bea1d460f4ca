import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts.models import User
from accounts.services import user_register
from core.errors import Conflict, ValidationFailed
from tests.helpers.money import fail_on_ledger_write, refreshed, reserve
from wallets import services
from wallets.errors import HoldNotFound, IdempotencyKeyReused, InsufficientFunds
from wallets.models import CREDITS_MAX, Hold, LedgerEntry, Wallet
from wallets.selectors import wallets_audit

pytestmark = pytest.mark.django_db


# --- the bonus ---------------------------------------------------------------


def test_new_user_gets_a_wallet_with_the_bonus(user):
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held) == (100, 0)
    bonus = wallet.entries.get()
    assert (bonus.kind, bonus.amount, bonus.balance_after) == ("bonus", 100, 100)
    assert bonus.idempotency_key == f"bonus:{user.pk}"


def test_bonus_granted_once_on_resave(user):
    user.display_name = "Alice A."
    user.save()
    User.objects.get(pk=user.pk).save()
    assert LedgerEntry.objects.filter(wallet__user=user).count() == 1
    assert Wallet.objects.get(user=user).balance == 100


def test_get_or_create_returns_the_existing_wallet_without_a_second_bonus(user):
    wallet, created = services.wallet_get_or_create(user=user)
    assert not created
    assert wallet.balance == 100
    assert wallet.entries.count() == 1


def test_get_or_create_makes_a_missing_wallet_with_the_bonus(walletless_user):
    wallet, created = services.wallet_get_or_create(user=walletless_user)
    assert created
    assert (wallet.balance, wallet.entries.get().kind) == (100, "bonus")


def test_bonus_amount_comes_from_settings(settings, make_user):
    settings.INITIAL_WALLET_BALANCE = 7
    assert Wallet.objects.get(user=make_user("dora")).balance == 7


def test_zero_bonus_makes_an_empty_wallet_and_no_entry(settings, make_user):
    settings.INITIAL_WALLET_BALANCE = 0
    wallet = Wallet.objects.get(user=make_user("dora"))
    assert wallet.balance == 0
    assert not wallet.entries.exists()


def test_bonus_granted_once_to_createsuperuser(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-pass-123")
    call_command("createsuperuser", "--noinput", "--login_id=root", verbosity=0)
    root = User.objects.get(login_id="root")
    assert root.is_superuser
    assert Wallet.objects.get(user=root).balance == 100
    assert LedgerEntry.objects.filter(wallet__user=root, kind="bonus").count() == 1


def test_bonus_granted_once_to_create_user_in_a_script():
    dora = User.objects.create_user("dora", password="a-long-enough-pass-123")
    dora.save()
    assert LedgerEntry.objects.filter(wallet__user=dora).count() == 1


def test_bonus_granted_once_to_a_registered_user():
    dora = user_register(login_id="dora", password="a-long-enough-pass-123")
    assert Wallet.objects.get(user=dora).balance == 100
    assert LedgerEntry.objects.filter(wallet__user=dora).count() == 1


def test_fixture_loads_do_not_grant_a_bonus(db):
    # Loading data (raw=True) writes rows as they are; the wallet comes with the fixture.
    from django.core import serializers

    data = '[{"model": "accounts.user", "pk": null, "fields": {"login_id": "dora", "password": ""}}]'
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert not Wallet.objects.filter(user__login_id="dora").exists()


def test_user_is_not_created_when_its_wallet_cannot_be(monkeypatch):
    fail_on_ledger_write(monkeypatch)
    with pytest.raises(RuntimeError):
        user_register(login_id="dora", password="a-long-enough-pass-123")
    assert not User.objects.filter(login_id="dora").exists()
    assert not Wallet.objects.exists()


# --- reserve, settle, release ------------------------------------------------


def test_reserve_holds_credit_without_charging(wallet, user):
    hold = reserve(user=user, amount=30, description="reply")
    assert (hold.amount, hold.status, hold.description) == (30, "open", "reply")
    wallet = refreshed(wallet)
    assert (wallet.balance, wallet.held, wallet.available) == (100, 30, 70)
    assert wallet.entries.count() == 1


def test_reserve_rejects_overdraft_and_writes_nothing(wallet, user):
    reserve(user=user, amount=60)
    with pytest.raises(InsufficientFunds) as caught:
        reserve(user=user, amount=41)
    assert caught.value.details == {"available": 40, "required": 41}
    assert (caught.value.code, caught.value.status_code) == ("insufficient_funds", 402)
    assert Hold.objects.count() == 1
    assert refreshed(wallet).held == 60


def test_reserve_may_take_every_available_credit(wallet, user):
    reserve(user=user, amount=100)
    assert refreshed(wallet).available == 0


@pytest.mark.parametrize("amount", [0, -1, 1.5, "10", True, None])
def test_reserve_rejects_an_amount_that_is_not_a_positive_int(user, amount):
    with pytest.raises(ValidationFailed) as caught:
        reserve(user=user, amount=amount)
    assert "amount" in caught.value.details
    assert not Hold.objects.exists()


def test_reserve_creates_a_missing_wallet_with_the_bonus(walletless_user):
    reserve(user=walletless_user, amount=10)
    wallet = Wallet.objects.get(user=walletless_user)
    assert (wallet.balance, wallet.held) == (100, 10)


def test_settle_charges_the_cost_as_one_entry_and_frees_the_hold(wallet, user):
    hold = reserve(user=user, amount=30)
    returned = services.wallet_settle(hold_id=hold.pk, cost=12, description="reply in general")
    assert (returned.balance, returned.held) == (88, 0)
    charge = LedgerEntry.objects.get(kind="charge")
    assert (charge.amount, charge.balance_after, charge.description, charge.hold_id) == (
        -12,
        88,
        "reply in general",
        hold.pk,
    )
    hold.refresh_from_db()
    assert (hold.status, hold.charged) == ("settled", 12)
    assert hold.closed_at is not None


def test_settle_caps_the_charge_at_the_hold(wallet, user):
    hold = reserve(user=user, amount=30)
    assert services.wallet_settle(hold_id=hold.pk, cost=500, description="long reply").balance == 70
    assert LedgerEntry.objects.get(kind="charge").amount == -30


def test_settle_at_zero_cost_writes_no_entry(wallet, user):
    hold = reserve(user=user, amount=30)
    assert services.wallet_settle(hold_id=hold.pk, cost=0, description="empty").balance == 100
    assert not LedgerEntry.objects.filter(kind="charge").exists()
    hold.refresh_from_db()
    assert hold.status == "settled"


def test_settle_twice_charges_once(wallet, user):
    hold = reserve(user=user, amount=30)
    services.wallet_settle(hold_id=hold.pk, cost=10, description="reply")
    again = services.wallet_settle(hold_id=hold.pk, cost=10, description="reply")
    assert (again.balance, again.held) == (90, 0)
    assert LedgerEntry.objects.filter(kind="charge").count() == 1


def test_release_after_settle_changes_nothing(wallet, user):
    hold = reserve(user=user, amount=30)
    services.wallet_settle(hold_id=hold.pk, cost=10, description="reply")
    assert services.wallet_release(hold_id=hold.pk).balance == 90
    hold.refresh_from_db()
    assert hold.status == "settled"


def test_release_frees_the_hold_and_charges_nothing(wallet, user):
    hold = reserve(user=user, amount=30)
    released = services.wallet_release(hold_id=hold.pk)
    assert (released.balance, released.held) == (100, 0)
    assert services.wallet_settle(hold_id=hold.pk, cost=5, description="late").balance == 100
    hold.refresh_from_db()
    assert (hold.status, hold.charged) == ("released", 0)
    assert wallet.entries.count() == 1


@pytest.mark.parametrize("hold_id", [uuid.uuid4(), "not-a-uuid", 42])
def test_settling_an_unknown_hold_is_not_found(user, hold_id):
    with pytest.raises(HoldNotFound):
        services.wallet_settle(hold_id=hold_id, cost=1, description="x")
    with pytest.raises(HoldNotFound):
        services.wallet_release(hold_id=hold_id)


@pytest.mark.parametrize("cost", [-1, 1.5, "3", None])
def test_settle_rejects_a_cost_that_is_not_a_natural_number(user, cost):
    hold = reserve(user=user, amount=30)
    with pytest.raises(ValidationFailed):
        services.wallet_settle(hold_id=hold.pk, cost=cost, description="x")
    hold.refresh_from_db()
    assert hold.status == "open"


def test_settle_runs_inside_the_callers_transaction(wallet, user):
    hold = reserve(user=user, amount=30)
    with transaction.atomic():
        services.wallet_settle(hold_id=hold.pk, cost=5, description="reply")
    assert refreshed(wallet).balance == 95


def test_settle_rolls_back_with_the_callers_transaction(wallet, user):
    hold = reserve(user=user, amount=30)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.wallet_settle(hold_id=hold.pk, cost=5, description="reply")
        raise RuntimeError("the assistant message failed to save")
    hold.refresh_from_db()
    assert hold.status == "open"
    assert (refreshed(wallet).balance, wallet.held) == (100, 30)


def test_settle_failing_halfway_leaves_the_hold_open_and_the_balance_whole(wallet, user, monkeypatch):
    hold = reserve(user=user, amount=30)
    fail_on_ledger_write(monkeypatch)
    with pytest.raises(RuntimeError):
        services.wallet_settle(hold_id=hold.pk, cost=5, description="reply")
    hold.refresh_from_db()
    assert (hold.status, hold.charged) == ("open", 0)
    assert (refreshed(wallet).balance, wallet.held) == (100, 30)


# --- top-up, refund, adjust --------------------------------------------------


def test_top_up_credits_with_reason_and_actor(wallet, user, staff_user):
    entry = services.wallet_top_up(user=user, amount=50, reason="  bought 50 ", actor=staff_user)
    assert (entry.kind, entry.amount, entry.balance_after) == ("topup", 50, 150)
    assert (entry.description, entry.actor) == ("bought 50", staff_user)
    assert refreshed(wallet).balance == 150


def test_top_up_with_the_same_key_applies_once(wallet, user):
    first = services.wallet_top_up(user=user, amount=50, reason="order 7", idempotency_key="order-7")
    again = services.wallet_top_up(user=user, amount=50, reason="order 7", idempotency_key="order-7")
    assert again.pk == first.pk
    assert refreshed(wallet).balance == 150


@pytest.mark.parametrize("change", [{"amount": 51}, {"user": "other"}])
def test_top_up_key_reused_for_something_else_is_a_conflict(wallet, user, other_user, change):
    services.wallet_top_up(user=user, amount=50, reason="order 7", idempotency_key="order-7")
    args = {"user": user, "amount": 50, "reason": "order 7", "idempotency_key": "order-7", **change}
    if args["user"] == "other":
        args["user"] = other_user
    with pytest.raises(Conflict) as caught:
        services.wallet_top_up(**args)
    assert caught.value.status_code == 409
    assert Wallet.objects.get(user=other_user).balance == 100
    assert refreshed(wallet).balance == 150


def test_caller_key_spelled_like_the_bonus_key_is_only_a_caller_key(wallet, user):
    """It does not replay the bonus: it is a top-up of its own, applied once."""
    first = services.wallet_top_up(
        user=user, amount=5, reason="x", idempotency_key=services.bonus_key(user.pk)
    )
    again = services.wallet_top_up(
        user=user, amount=5, reason="x", idempotency_key=services.bonus_key(user.pk)
    )
    assert (first.kind, first.key_scope, again.pk) == ("topup", "caller", first.pk)
    assert refreshed(wallet).balance == 105
    with pytest.raises(IdempotencyKeyReused):
        services.wallet_top_up(user=user, amount=6, reason="x", idempotency_key=services.bonus_key(user.pk))


def next_user_id() -> int:
    """The id the next sign-up will get: store a user without a wallet, note its id, delete it."""
    (probe,) = User.objects.bulk_create([User(login_id="probe-for-the-next-id")])
    probe_id = probe.pk
    probe.delete()
    return probe_id + 1


def test_a_caller_cannot_squat_the_next_users_bonus_key(user):
    next_id = next_user_id()
    services.wallet_top_up(user=user, amount=5, reason="probe", idempotency_key=services.bonus_key(next_id))

    dora = user_register(login_id="dora", password="a-long-enough-pass-123")

    assert dora.pk == next_id
    bonus = LedgerEntry.objects.get(wallet__user=dora)
    assert (bonus.kind, bonus.amount, bonus.key_scope) == ("bonus", 100, "system")
    assert bonus.idempotency_key == services.bonus_key(next_id)
    assert Wallet.objects.get(user=user).balance == 105


def test_an_operator_squatting_the_bonus_key_does_not_block_the_next_sign_up(api_client, user):
    next_id = next_user_id()
    call_command(
        "topup_wallet", "alice", "5", "--reason", "x", "--key", f"bonus:{next_id}", stdout=StringIO()
    )

    response = api_client.post(
        "/auth/register", {"login_id": "dora", "password": "a-long-enough-pass-123"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["id"] == next_id
    assert Wallet.objects.get(user_id=next_id).balance == 100
    root = User.objects.create_superuser("root", password="a-long-enough-pass-123")
    assert Wallet.objects.get(user=root).balance == 100


@pytest.mark.parametrize("amount", [0, -5, 2.5, "5", True, None])
def test_top_up_rejects_an_amount_that_is_not_a_positive_int(wallet, user, amount):
    with pytest.raises(ValidationFailed) as caught:
        services.wallet_top_up(user=user, amount=amount, reason="x")
    assert "amount" in caught.value.details
    assert refreshed(wallet).balance == 100


@pytest.mark.parametrize("reason", ["", "   ", None, "x" * 256])
def test_top_up_requires_a_reason(wallet, user, reason):
    with pytest.raises(ValidationFailed) as caught:
        services.wallet_top_up(user=user, amount=5, reason=reason)
    assert "reason" in caught.value.details
    assert refreshed(wallet).balance == 100


@pytest.mark.parametrize("key", ["", "  ", "k" * 201, 7])
def test_top_up_rejects_a_bad_key(user, key):
    with pytest.raises(ValidationFailed):
        services.wallet_top_up(user=user, amount=5, reason="x", idempotency_key=key)


def test_top_up_failing_halfway_writes_nothing(wallet, user, monkeypatch):
    fail_on_ledger_write(monkeypatch)
    with pytest.raises(RuntimeError):
        services.wallet_top_up(user=user, amount=50, reason="x", idempotency_key="k1")
    assert refreshed(wallet).balance == 100
    assert wallet.entries.count() == 1


def test_top_up_refuses_to_run_inside_another_transaction(user):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.wallet_top_up(user=user, amount=5, reason="x")


def test_refund_credits_as_a_refund(wallet, user):
    entry = services.wallet_refund(user=user, amount=3, reason="reply cut short")
    assert (entry.kind, entry.amount, entry.balance_after) == ("refund", 3, 103)


def test_adjust_takes_credits_away_with_the_staff_member_recorded(wallet, user, staff_user):
    entry = services.wallet_adjust(user=user, amount=-40, reason="duplicate top-up", actor=staff_user)
    assert (entry.kind, entry.amount, entry.balance_after, entry.actor) == ("adjustment", -40, 60, staff_user)
    assert refreshed(wallet).balance == 60


def test_adjust_cannot_take_held_credits(wallet, user, staff_user):
    reserve(user=user, amount=70)
    with pytest.raises(InsufficientFunds) as caught:
        services.wallet_adjust(user=user, amount=-31, reason="x", actor=staff_user)
    assert caught.value.details == {"available": 30, "required": 31}
    assert refreshed(wallet).balance == 100
    services.wallet_adjust(user=user, amount=-30, reason="x", actor=staff_user)
    assert refreshed(wallet).available == 0


def test_adjust_rejects_zero(user, staff_user):
    with pytest.raises(ValidationFailed):
        services.wallet_adjust(user=user, amount=0, reason="x", actor=staff_user)


def test_every_service_keeps_the_ledger_and_the_balance_in_step(user, other_user, staff_user):
    for amount in (5, 17, 30):
        hold = reserve(user=user, amount=amount)
        services.wallet_settle(hold_id=hold.pk, cost=amount - 2, description="reply")
    services.wallet_release(hold_id=reserve(user=other_user, amount=9).pk)
    reserve(user=other_user, amount=9)
    services.wallet_top_up(user=user, amount=12, reason="x")
    services.wallet_refund(user=other_user, amount=1, reason="x")
    services.wallet_adjust(user=user, amount=-3, reason="x", actor=staff_user)
    assert list(wallets_audit()) == []
    wallet = Wallet.objects.get(user=user)
    assert wallet.balance == 100 - (3 + 15 + 28) + 12 - 3


@pytest.mark.django_db(transaction=True)
def test_hold_needs_the_callers_transaction(user):
    with pytest.raises(RuntimeError):
        services.wallet_hold(user=user, amount=5)
    assert not Hold.objects.exists()


def test_hold_refused_rolls_back_the_callers_writes(user):
    with pytest.raises(InsufficientFunds), transaction.atomic():
        User.objects.create_user("written-with-the-hold", "a-long-passphrase-1")
        services.wallet_hold(user=user, amount=10_000)
    assert not Hold.objects.exists()
    assert not User.objects.filter(login_id="written-with-the-hold").exists()
    assert Wallet.objects.get(user=user).held == 0


# --- amounts past the money columns' range -------------------------------------


TOO_MANY = [CREDITS_MAX + 1, 2**63, 10**30]


@pytest.mark.parametrize("amount", TOO_MANY)
@pytest.mark.parametrize("service", ["wallet_top_up", "wallet_refund", "wallet_adjust"])
def test_ledger_services_refuse_an_amount_past_the_column_range(wallet, user, staff_user, service, amount):
    with pytest.raises(ValidationFailed) as caught:
        getattr(services, service)(user=user, amount=amount, reason="x", actor=staff_user)
    assert "amount" in caught.value.details
    assert (refreshed(wallet).balance, wallet.entries.count()) == (100, 1)


@pytest.mark.parametrize("amount", [-a for a in TOO_MANY])
def test_adjust_refuses_a_negative_amount_past_the_column_range(wallet, user, staff_user, amount):
    with pytest.raises(ValidationFailed):
        services.wallet_adjust(user=user, amount=amount, reason="x", actor=staff_user)
    assert refreshed(wallet).balance == 100


@pytest.mark.parametrize("amount", TOO_MANY)
def test_hold_refuses_an_amount_past_the_column_range(wallet, user, amount):
    with pytest.raises(ValidationFailed) as caught:
        reserve(user=user, amount=amount)
    assert "amount" in caught.value.details
    assert not Hold.objects.exists()


@pytest.mark.parametrize("cost", TOO_MANY)
def test_settle_refuses_a_cost_past_the_column_range(wallet, user, cost):
    hold = reserve(user=user, amount=30)
    with pytest.raises(ValidationFailed) as caught:
        services.wallet_settle(hold_id=hold.pk, cost=cost, description="reply")
    assert "cost" in caught.value.details
    hold.refresh_from_db()
    assert hold.status == Hold.Status.OPEN


def test_hold_of_the_largest_amount_is_insufficient_funds_not_a_database_error(wallet, user):
    with pytest.raises(InsufficientFunds):
        reserve(user=user, amount=CREDITS_MAX)


def test_a_credit_may_fill_the_wallet_to_the_column_range_and_no_further(wallet, user, staff_user):
    entry = services.wallet_top_up(user=user, amount=CREDITS_MAX - 100, reason="fill")
    assert entry.balance_after == refreshed(wallet).balance == CREDITS_MAX
    for service in (services.wallet_top_up, services.wallet_refund, services.wallet_adjust):
        with pytest.raises(ValidationFailed) as caught:
            service(user=user, amount=1, reason="one more", actor=staff_user)
        assert "would pass" in caught.value.details["amount"][0]
    assert (refreshed(wallet).balance, wallet.entries.count()) == (CREDITS_MAX, 2)
    # Still a working wallet at the top: it can hold, spend and be read.
    hold = reserve(user=user, amount=CREDITS_MAX)
    assert services.wallet_settle(hold_id=hold.pk, cost=1, description="reply").balance == CREDITS_MAX - 1
    assert list(wallets_audit()) == []


def test_a_credit_past_the_range_on_a_busy_wallet_is_refused(wallet, user):
    services.wallet_top_up(user=user, amount=CREDITS_MAX // 2, reason="half")
    with pytest.raises(ValidationFailed):
        services.wallet_top_up(user=user, amount=CREDITS_MAX // 2 + 100, reason="and the rest")
    assert refreshed(wallet).balance == CREDITS_MAX // 2 + 100
