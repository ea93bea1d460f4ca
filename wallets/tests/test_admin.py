"""Support staff through the admin's own URLs, logged in with the Django test client."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.helpers.money import reserve
from wallets import services
from wallets.codes import code_batch_create, code_batch_void, code_digest, code_redeem
from wallets.models import CREDITS_MAX, CodeBatch, LedgerEntry, RedemptionCode, Wallet

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/wallets/wallet/"


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def adjust_url(wallet: Wallet) -> str:
    return f"/admin/wallets/wallet/{wallet.pk}/adjust/"


def fresh_key(client: Client, wallet: Wallet) -> str:
    """The hidden idempotency key of a freshly rendered form."""
    page = client.get(adjust_url(wallet)).content.decode()
    return re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("query", ["alice", "ALICE", "alice@example.com"])
def test_wallets_are_searchable_by_login_id_and_email(staff_client, wallet, other_user, query):
    response = staff_client.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wallet]


def test_wallet_page_is_read_only_and_shows_the_ledger(staff_client, wallet, user):
    services.wallet_top_up(user=user, amount=5, reason="goodwill gesture")
    response = staff_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="balance"' not in page
    assert "goodwill gesture" in page
    assert "Top up / adjust" in page
    assert 'name="entries-0-amount"' not in page


def test_admin_cannot_post_a_balance_only_the_spending_caps(staff_client, wallet):
    url = f"/admin/wallets/wallet/{wallet.pk}/change/"
    page = staff_client.get(url)
    management = {}
    for inline in page.context["inline_admin_formsets"]:
        form = inline.formset.management_form
        management.update({form.add_prefix(name): value for name, value in form.initial.items()})
    response = staff_client.post(
        url, {**management, "balance": 10**6, "held": 0, "daily_spend_cap": "20", "monthly_spend_cap": ""}
    )
    assert response.status_code == 302
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.held) == (100, 0)
    assert (wallet.daily_spend_cap, wallet.monthly_spend_cap) == (20, None)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/wallets/wallet/add/",
        "/admin/wallets/wallet/{wallet}/delete/",
        "/admin/wallets/ledgerentry/add/",
        "/admin/wallets/ledgerentry/{entry}/delete/",
        "/admin/wallets/hold/add/",
    ],
)
def test_no_admin_path_adds_or_deletes_money_rows(staff_client, wallet, path):
    url = path.format(wallet=wallet.pk, entry=wallet.entries.get().pk)
    before = (Wallet.objects.count(), LedgerEntry.objects.count())
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert (Wallet.objects.count(), LedgerEntry.objects.count()) == before


def test_ledger_entry_page_is_read_only(staff_client, wallet):
    entry = wallet.entries.get()
    url = f"/admin/wallets/ledgerentry/{entry.pk}/change/"
    assert staff_client.get(url).status_code == 200
    assert staff_client.post(url, {"amount": 10**6}).status_code == 403
    assert staff_client.get("/admin/wallets/ledgerentry/", {"q": "alice"}).status_code == 200
    assert staff_client.get("/admin/wallets/hold/").status_code == 200


def test_staff_top_up_goes_through_the_service_with_the_actor(staff_client, staff_user, wallet):
    response = staff_client.post(
        adjust_url(wallet),
        {
            "kind": "topup",
            "amount": 40,
            "reason": "phone support #12",
            "idempotency_key": fresh_key(staff_client, wallet),
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/admin/wallets/wallet/{wallet.pk}/change/"
    wallet.refresh_from_db()
    assert wallet.balance == 140
    entry = wallet.entries.get(kind="topup")
    assert (entry.amount, entry.description, entry.actor) == (40, "phone support #12", staff_user)


def test_submitting_the_same_form_twice_applies_once(staff_client, wallet):
    data = {
        "kind": "refund",
        "amount": 5,
        "reason": "bad reply",
        "idempotency_key": fresh_key(staff_client, wallet),
    }
    assert staff_client.post(adjust_url(wallet), data).status_code == 302
    assert staff_client.post(adjust_url(wallet), data).status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == 105
    assert wallet.entries.filter(kind="refund").count() == 1


def test_staff_adjustment_can_take_credits_away(staff_client, staff_user, wallet):
    data = {"kind": "adjustment", "amount": -30, "reason": "double top-up", "idempotency_key": "admin:a1"}
    assert staff_client.post(adjust_url(wallet), data).status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == 70
    assert wallet.entries.get(kind="adjustment").actor == staff_user


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"kind": "adjustment", "amount": -101, "reason": "x"}, "does not hold enough"),
        ({"kind": "topup", "amount": -5, "reason": "x"}, "greater than zero"),
        ({"kind": "topup", "amount": 0, "reason": "x"}, "greater than zero"),
        ({"kind": "topup", "amount": 5, "reason": ""}, "required"),
        ({"kind": "topup", "amount": "ten", "reason": "x"}, "whole number"),
        ({"kind": "bonus", "amount": 5, "reason": "x"}, "valid choice"),
    ],
)
def test_bad_adjustments_show_the_form_again_and_write_nothing(staff_client, wallet, data, error):
    response = staff_client.post(adjust_url(wallet), {**data, "idempotency_key": "admin:k"})
    assert response.status_code == 200
    assert error in response.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance == 100
    assert wallet.entries.count() == 1


def assert_nothing_recorded(response, wallet, *, balance: int = 100, entries: int = 1) -> str:
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was recorded" in page
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.entries.count()) == (balance, entries)
    return page


@pytest.mark.parametrize("amount", [10**30, 2**63, -(2**63) - 1, "9" * 5000])
def test_an_amount_past_the_column_range_is_a_form_error_not_a_500(staff_client, wallet, amount):
    data = {"kind": "adjustment", "amount": amount, "reason": "x", "idempotency_key": "admin:big"}
    page = assert_nothing_recorded(staff_client.post(adjust_url(wallet), data), wallet)
    assert "credits." in page or "whole number" in page


def test_a_credit_that_would_overflow_the_balance_is_a_form_error(staff_client, wallet):
    data = {"kind": "topup", "amount": CREDITS_MAX, "reason": "x", "idempotency_key": "admin:fill"}
    page = assert_nothing_recorded(staff_client.post(adjust_url(wallet), data), wallet)
    assert "the most a wallet holds" in page


def test_a_key_reused_for_another_amount_is_shown_and_the_form_gets_a_fresh_key(staff_client, wallet):
    key = fresh_key(staff_client, wallet)
    data = {"kind": "topup", "amount": 40, "reason": "phone support", "idempotency_key": key}
    assert staff_client.post(adjust_url(wallet), data).status_code == 302

    response = staff_client.post(adjust_url(wallet), {**data, "amount": 50})

    page = assert_nothing_recorded(response, wallet, balance=140, entries=2)
    assert "already submitted with other values" in page
    renewed = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    assert renewed != key
    # Submitting the corrected form again records it, once.
    assert (
        staff_client.post(adjust_url(wallet), {**data, "amount": 50, "idempotency_key": renewed}).status_code
        == 302
    )
    wallet.refresh_from_db()
    assert wallet.balance == 190


@pytest.mark.parametrize("key", ["k" * 101, "", "   "])
def test_a_bad_hidden_key_is_shown_above_the_form(staff_client, wallet, key):
    data = {"kind": "topup", "amount": 5, "reason": "x", "idempotency_key": key}
    page = assert_nothing_recorded(staff_client.post(adjust_url(wallet), data), wallet)
    assert "hidden key is not valid" in page
    assert re.search(r'name="idempotency_key" value="admin:[0-9a-f-]{36}"', page)


def test_not_enough_credits_says_how_many_are_available(staff_client, wallet, user):
    reserve(user=user, amount=30)
    data = {"kind": "adjustment", "amount": -80, "reason": "x", "idempotency_key": "admin:k"}
    page = assert_nothing_recorded(staff_client.post(adjust_url(wallet), data), wallet)
    assert "does not hold enough credits" in page
    assert "It has 70 available" in page


def test_staff_without_the_adjust_permission_cannot_move_credits(make_user, wallet):
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_wallet"))
    client = Client()
    client.force_login(clerk)
    assert client.get(f"/admin/wallets/wallet/{wallet.pk}/change/").status_code == 200
    data = {"kind": "topup", "amount": 5, "reason": "x", "idempotency_key": "admin:k"}
    assert client.post(adjust_url(wallet), data).status_code == 403
    wallet.refresh_from_db()
    assert wallet.balance == 100


def test_adjust_page_for_an_unknown_wallet_is_404(staff_client):
    assert staff_client.get("/admin/wallets/wallet/999999/adjust/").status_code == 404


def test_adjust_page_needs_a_staff_login(client, wallet):
    response = client.get(adjust_url(wallet))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_user_added_in_the_admin_gets_the_bonus_once(staff_client):
    User = get_user_model()
    if User not in admin.site._registry:
        pytest.skip("the accounts app has not registered its user admin yet")
    password = "a-long-enough-pass-123"
    response = staff_client.post(
        f"/admin/{User._meta.app_label}/{User._meta.model_name}/add/",
        {"login_id": "erin", "usable_password": "true", "password1": password, "password2": password},
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    erin = User.objects.get(login_id="erin")
    assert Wallet.objects.get(user=erin).balance == 100
    assert LedgerEntry.objects.filter(wallet__user=erin, kind="bonus").count() == 1


# --- redemption codes ----------------------------------------------------------

BATCHES = "/admin/wallets/codebatch/"
MAKE_CODES = "/admin/wallets/codebatch/add/"


def shown_codes(response) -> list[str]:
    return re.findall(r"\b[A-HJ-NP-Z2-9]{4}(?:-[A-HJ-NP-Z2-9]{4}){3}\b", response.content.decode())


def test_staff_make_a_batch_and_see_its_codes_once(staff_client, staff_user, user):
    response = staff_client.post(MAKE_CODES, {"name": "Partner promo", "count": "5", "credits": "30"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = shown_codes(response)
    assert len(set(codes)) == 5
    batch = CodeBatch.objects.get()
    assert (batch.name, batch.count, batch.credits, batch.created_by) == ("Partner promo", 5, 30, staff_user)
    # Never again: not on the list, the batch's page, or the codes' pages.
    for url in (BATCHES, f"{BATCHES}{batch.pk}/change/", "/admin/wallets/redemptioncode/"):
        page = staff_client.get(url)
        assert page.status_code == 200
        assert shown_codes(page) == []
    assert code_redeem(user=user, code=codes[0]).amount == 30


def test_bad_batches_show_the_form_again_and_make_nothing(staff_client):
    response = staff_client.post(MAKE_CODES, {"name": "x", "count": "0", "credits": "30"})
    assert response.status_code == 200
    assert response.context["form"].errors == {"count": ["Ensure this value is greater than or equal to 1."]}
    past = staff_client.post(
        MAKE_CODES, {"name": "x", "count": "2", "credits": "3", "expires_at": "2020-01-01 00:00"}
    )
    assert past.context["form"].errors == {"expires_at": ["Must be in the future."]}
    assert shown_codes(past) == [] and not CodeBatch.objects.exists()


def test_batches_list_redeemed_of_total_in_constant_queries(
    staff_client, user, other_user, django_assert_max_num_queries
):
    for n in range(15):
        batch, codes = code_batch_create(name=f"batch {n}", count=3, credits=1)
        code_redeem(user=user if n % 2 else other_user, code=codes[0])
    code_redeem(user=user, code=codes[1])
    code_batch_void(batch=batch, actor=None)

    with django_assert_max_num_queries(6):  # session, user, count, batches (annotated), and the rest
        response = staff_client.get(BATCHES)

    rows = {row.name: (row.redeemed, row.voided) for row in response.context["cl"].result_list}
    assert rows["batch 14"] == (2, 1) and rows["batch 0"] == (1, 0)
    assert "2 / 3" in response.content.decode()


def test_void_action_voids_the_unredeemed_codes(staff_client, staff_user, user):
    batch, codes = code_batch_create(name="x", count=4, credits=5)
    code_redeem(user=user, code=codes[0])

    response = staff_client.post(
        BATCHES, {"action": "void_unredeemed", admin.helpers.ACTION_CHECKBOX_NAME: [batch.pk]}, follow=True
    )

    assert "3 unredeemed code(s) voided." in response.content.decode()
    assert RedemptionCode.objects.filter(voided_by=staff_user).count() == 3
    assert Wallet.objects.get(user=user).balance == 105


def test_codes_are_read_only_and_found_by_the_code_as_typed(staff_client, user):
    _, codes = code_batch_create(name="x", count=3, credits=5)
    code = RedemptionCode.objects.get(digest=code_digest(codes[1]))

    response = staff_client.get("/admin/wallets/redemptioncode/", {"q": codes[1].lower()})

    assert list(response.context["cl"].result_list) == [code]
    assert (
        staff_client.post(f"/admin/wallets/redemptioncode/{code.pk}/change/", {"voided_at": "x"}).status_code
        == 403
    )
    for url in ("/admin/wallets/redemptioncode/add/", f"/admin/wallets/codebatch/{code.batch_id}/delete/"):
        assert staff_client.post(url, {"post": "yes"}).status_code == 403


def test_staff_without_the_permissions_cannot_make_or_void_codes(make_user):
    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_codebatch"))
    client = Client()
    client.force_login(clerk)
    batch, _ = code_batch_create(name="x", count=2, credits=5)

    assert client.post(MAKE_CODES, {"name": "x", "count": "5", "credits": "30"}).status_code == 403
    client.post(BATCHES, {"action": "void_unredeemed", admin.helpers.ACTION_CHECKBOX_NAME: [batch.pk]})
    assert CodeBatch.objects.count() == 1
    assert not RedemptionCode.objects.filter(voided_at__isnull=False).exists()
