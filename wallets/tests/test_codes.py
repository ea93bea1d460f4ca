import hashlib
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from core.errors import ValidationFailed
from tests.helpers.money import fail_on_ledger_write, refreshed
from wallets.codes import (
    CODE_ALPHABET,
    CODE_BATCH_MAX,
    CODE_GROUP_LENGTH,
    CODE_GROUPS,
    code_batch_create,
    code_batch_void,
    code_redeem,
    redeem_key,
)
from wallets.errors import InvalidCode
from wallets.models import CREDITS_MAX, CodeBatch, LedgerEntry, RedemptionCode, Wallet
from wallets.selectors import wallets_audit

pytestmark = pytest.mark.django_db


INVALID_CODE = "That code is not valid."


def redeem_fails(user, code) -> InvalidCode:
    with pytest.raises(InvalidCode) as caught:
        code_redeem(user=user, code=code)
    return caught.value


def test_a_batch_gives_distinct_typable_codes_stored_only_as_digests(staff_user):
    batch, codes = code_batch_create(name="Spring", count=50, credits=25, actor=staff_user)

    assert (batch.name, batch.count, batch.credits, batch.created_by) == ("Spring", 50, 25, staff_user)
    assert len(set(codes)) == 50
    for code in codes:
        assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}", code), code
    digests = set(RedemptionCode.objects.filter(batch=batch).values_list("digest", flat=True))
    assert digests == {hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes}
    stored = " ".join(str(row) for row in RedemptionCode.objects.values_list())
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)


def test_codes_carry_at_least_80_bits():
    assert len(CODE_ALPHABET) ** (CODE_GROUPS * CODE_GROUP_LENGTH) >= 2**80
    assert not set("0O1I") & set(CODE_ALPHABET)


def test_redeeming_credits_once_as_a_topup_naming_the_batch(user, wallet):
    batch, [code] = code_batch_create(name="Black Friday", count=1, credits=40)

    entry = code_redeem(user=user, code=code)

    assert (entry.kind, entry.amount, entry.balance_after) == ("topup", 40, 140)
    assert "Black Friday" in entry.description and f"#{batch.pk}" in entry.description
    assert (entry.key_scope, entry.idempotency_key) == ("system", redeem_key(entry.redemption.pk))
    redeemed = RedemptionCode.objects.get(batch=batch)
    assert (redeemed.redeemed_by, redeemed.entry, redeemed.voided_at) == (user, entry, None)
    assert refreshed(wallet).balance == 140
    assert redeem_fails(user, code).message == INVALID_CODE
    assert refreshed(wallet).balance == 140
    call_command("audit_wallets", stdout=StringIO())


@pytest.mark.parametrize("typed", [str.lower, lambda c: c.replace("-", ""), lambda c: " ".join(c.split("-"))])
def test_a_code_is_redeemed_however_it_is_typed(user, typed):
    _, [code] = code_batch_create(name="x", count=1, credits=5)
    assert code_redeem(user=user, code=f"  {typed(code)} ").amount == 5


def test_a_user_without_a_wallet_gets_one_with_the_bonus_and_the_code(walletless_user):
    _, [code] = code_batch_create(name="x", count=1, credits=5)
    assert code_redeem(user=walletless_user, code=code).balance_after == 105
    assert list(wallets_audit()) == []


def _used(user, other_user):
    _, [code] = code_batch_create(name="x", count=1, credits=5)
    code_redeem(user=other_user, code=code)
    return code


def _expired(user, other_user):
    batch, [code] = code_batch_create(
        name="x", count=1, credits=5, expires_at=timezone.now() + timedelta(hours=1)
    )
    CodeBatch.objects.filter(pk=batch.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    return code


def _voided(user, other_user):
    batch, [code] = code_batch_create(name="x", count=1, credits=5)
    code_batch_void(batch=batch, actor=None)
    return code


@pytest.mark.parametrize(
    "make_code",
    [
        lambda u, o: "AAAA-BBBB-CCCC-DDDD",
        lambda u, o: "",
        lambda u, o: "\ud800" * 3,
        lambda u, o: 12345,
        _used,
        _expired,
        _voided,
    ],
    ids=["unknown", "empty", "surrogates", "not-a-string", "used", "expired", "voided"],
)
def test_every_invalid_code_is_the_same_error(user, other_user, wallet, make_code):
    code = make_code(user, other_user)
    before = LedgerEntry.objects.count()

    error = redeem_fails(user, code)

    assert (error.code, error.status_code, error.message, error.details) == (
        "invalid_code",
        400,
        INVALID_CODE,
        {},
    )
    assert refreshed(wallet).balance == 100
    assert LedgerEntry.objects.count() == before
    assert list(wallets_audit()) == []


def test_a_code_works_until_its_batch_expires(user):
    _, [code] = code_batch_create(
        name="x", count=1, credits=5, expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert code_redeem(user=user, code=code).amount == 5


def test_void_voids_only_the_unredeemed_codes_and_keeps_the_topups(user, staff_user):
    batch, codes = code_batch_create(name="x", count=3, credits=5)
    code_redeem(user=user, code=codes[0])

    assert code_batch_void(batch=batch, actor=staff_user) == 2
    assert code_batch_void(batch=batch, actor=staff_user) == 0

    rows = RedemptionCode.objects.filter(batch=batch)
    assert rows.filter(voided_at__isnull=False, voided_by=staff_user).count() == 2
    assert rows.get(voided_at__isnull=True).redeemed_by == user
    assert Wallet.objects.get(user=user).balance == 105
    for code in codes[1:]:
        redeem_fails(user, code)


def test_a_failed_credit_rolls_the_claim_back(user, monkeypatch):
    _, [code] = code_batch_create(name="x", count=1, credits=5)
    fail_on_ledger_write(monkeypatch)
    with pytest.raises(RuntimeError):
        code_redeem(user=user, code=code)
    monkeypatch.undo()
    assert RedemptionCode.objects.get().redeemed_at is None
    assert code_redeem(user=user, code=code).amount == 5


def test_a_code_past_the_balance_ceiling_is_refused_and_stays_unused(user, wallet):
    _, [code] = code_batch_create(name="x", count=1, credits=CREDITS_MAX)
    with pytest.raises(ValidationFailed):
        code_redeem(user=user, code=code)
    assert RedemptionCode.objects.get().redeemed_at is None
    assert refreshed(wallet).balance == 100


def test_redeeming_inside_another_transaction_is_refused(user):
    _, [code] = code_batch_create(name="x", count=1, credits=5)
    with pytest.raises(RuntimeError), transaction.atomic():
        code_redeem(user=user, code=code)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"count": 0}, "count"),
        ({"count": CODE_BATCH_MAX + 1}, "count"),
        ({"count": True}, "count"),
        ({"credits": 0}, "credits"),
        ({"credits": CREDITS_MAX + 1}, "credits"),
        ({"credits": 1.5}, "credits"),
        ({"expires_at": "2030-01-01"}, "expires_at"),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at"),  # naive on purpose
        ({"expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "expires_at"),
    ],
)
def test_bad_batches_are_refused_and_write_nothing(fields, field):
    arguments = {"name": "x", "count": 2, "credits": 5, **fields}
    with pytest.raises(ValidationFailed) as caught:
        code_batch_create(**arguments)
    assert set(caught.value.details) == {field}
    assert not CodeBatch.objects.exists() and not RedemptionCode.objects.exists()
