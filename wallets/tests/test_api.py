from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import resolve, reverse

from tests.helpers.asserts import assert_error
from tests.helpers.clients import bearer_client
from tests.helpers.money import reserve
from wallets import services
from wallets.codes import code_batch_create
from wallets.models import LedgerEntry, Wallet
from wallets.views import WalletViewSet

pytestmark = pytest.mark.django_db

WALLET = "/api/wallet/"
TRANSACTIONS = "/api/wallet/transactions/"
REDEEM = "/api/wallet/redeem/"


def test_get_wallet_shows_balance_held_and_available(auth_client, user):
    reserve(user=user, amount=30)
    response = auth_client.get(WALLET)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"balance", "held", "available", "currency", "updated_at"}
    assert (body["balance"], body["held"], body["available"], body["currency"]) == (100, 30, 70, "credits")


def test_get_wallet_creates_a_missing_one_with_the_bonus(walletless_user):
    response = bearer_client(walletless_user).get(WALLET)
    assert response.status_code == 200
    assert response.json()["balance"] == 100
    assert Wallet.objects.get(user=walletless_user).entries.count() == 1


def test_post_wallet_is_201_when_created_now_then_200_without_a_second_bonus(walletless_user):
    client = bearer_client(walletless_user)
    first = client.post(WALLET)
    again = client.post(WALLET)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["balance"] == again.json()["balance"] == 100
    assert LedgerEntry.objects.filter(wallet__user=walletless_user, kind="bonus").count() == 1


def test_post_wallet_that_exists_is_200(auth_client):
    response = auth_client.post(WALLET)
    assert response.status_code == 200
    assert response.json()["balance"] == 100


@pytest.mark.parametrize("path", [WALLET, TRANSACTIONS])
def test_wallet_needs_authentication(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_wallet_cannot_be_deleted_or_edited_through_the_api(auth_client):
    for method in (auth_client.delete, auth_client.put, auth_client.patch):
        response = method(WALLET, {"balance": 10**6}, format="json")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert auth_client.get(WALLET).json()["balance"] == 100


def test_transactions_are_the_callers_own_newest_first(auth_client, user, other_user):
    hold = reserve(user=user, amount=10)
    services.wallet_settle(hold_id=hold.pk, cost=4, description="reply in general")
    services.wallet_top_up(user=user, amount=20, reason="bought")
    services.wallet_top_up(user=other_user, amount=999, reason="not alice's")

    response = auth_client.get(TRANSACTIONS)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next", "previous"}
    rows = body["results"]
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("topup", 20, 116),
        ("charge", -4, 96),
        ("bonus", 100, 100),
    ]
    assert set(rows[0]) == {"id", "kind", "amount", "balance_after", "description", "created_at"}
    assert rows[1]["description"] == "reply in general"


def test_transactions_paginate_in_constant_queries(auth_client, user, django_assert_max_num_queries):
    for n in range(30):
        services.wallet_top_up(user=user, amount=1, reason=f"top-up {n}")

    with django_assert_max_num_queries(2):  # the token's user, one page of entries
        first = auth_client.get(TRANSACTIONS, {"page_size": 25}).json()
    assert len(first["results"]) == 25
    assert first["results"][0]["balance_after"] == 130
    with django_assert_max_num_queries(2):
        second = auth_client.get(first["next"]).json()
    assert [r["kind"] for r in second["results"]] == ["topup"] * 5 + ["bonus"]
    assert second["next"] is None


def test_get_wallet_reads_in_two_queries(auth_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # the token's user, the wallet
        assert auth_client.get(WALLET).status_code == 200


def test_wallet_urls_keep_their_names_and_are_served_by_the_viewset():
    assert reverse("wallets:wallet") == WALLET
    assert reverse("wallets:transactions") == TRANSACTIONS
    assert reverse("wallets:redeem") == REDEEM
    for path in (WALLET, TRANSACTIONS, REDEEM):
        assert resolve(path).func.cls is WalletViewSet


@pytest.mark.parametrize(
    ("path", "name", "description", "allow"),
    [
        (
            WALLET,
            "Wallet",
            "The caller's wallet; reading it creates it (with the bonus) if it is missing.",
            "GET, POST, HEAD, OPTIONS",
        ),
        (TRANSACTIONS, "Transaction List", "The caller's ledger, newest first.", "GET, HEAD, OPTIONS"),
    ],
)
def test_options_describe_each_url_and_no_body_to_send(auth_client, path, name, description, allow):
    response = auth_client.options(path)
    assert response.status_code == 200
    assert response["Allow"] == allow
    assert response.json() == {
        "name": name,
        "description": description,
        "renders": ["application/json"],
        "parses": ["application/json"],
    }


# --- redemption codes ----------------------------------------------------------


def new_code(credits: int = 25, **fields) -> str:
    _, [code] = code_batch_create(name="Spring", count=1, credits=credits, **fields)
    return code


def redeem(client, code, ip="203.0.113.7"):
    return client.post(REDEEM, {"code": code}, format="json", REMOTE_ADDR=ip)


def test_redeem_tops_up_the_callers_wallet_and_answers_the_balance(auth_client, user):
    response = redeem(auth_client, new_code())

    assert response.status_code == 200
    assert response.json() == {"balance": 125}
    [entry] = auth_client.get(TRANSACTIONS).json()["results"][:1]
    assert (entry["kind"], entry["amount"]) == ("topup", 25)
    assert "Spring" in entry["description"]
    call_command("audit_wallets", stdout=StringIO())


def test_a_used_code_and_an_unknown_one_get_the_same_answer(auth_client, other_client):
    code = new_code()
    assert redeem(other_client, code).status_code == 200

    used, unknown = redeem(auth_client, code), redeem(auth_client, "AAAA-BBBB-CCCC-DDDD")

    assert assert_error(used, 400, "invalid_code") == assert_error(unknown, 400, "invalid_code")
    assert auth_client.get(WALLET).json()["balance"] == 100


@pytest.mark.parametrize("body", [{}, {"code": 5}, {"code": ["A"]}, {"code": ""}, {"code": "A" * 65}, []])
def test_redeem_without_a_string_code_is_a_validation_error(auth_client, body):
    error = assert_error(auth_client.post(REDEEM, body, format="json"), 400, "validation_error")
    if isinstance(body, dict):
        assert set(error["details"]) == {"code"}


def test_redeem_needs_authentication(api_client):
    assert_error(redeem(api_client, new_code()), 401, "not_authenticated")
    assert LedgerEntry.objects.filter(kind="topup").count() == 0


@pytest.fixture
def three_per_minute(settings):
    settings.REDEEM_THROTTLE_RATE = "3/min"


def assert_throttled(response) -> None:
    error = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 60
    assert error["details"] == {"retry_after": retry_after}


def test_redeem_is_throttled_per_user_across_addresses(auth_client, other_client, three_per_minute):
    for n in range(3):
        assert_error(redeem(auth_client, "WRONG-CODE", ip=f"198.51.100.{n}"), 400, "invalid_code")

    # Even a good code waits: the limit counts attempts, not failures.
    code = new_code()
    assert_throttled(redeem(auth_client, code, ip="198.51.100.99"))
    assert redeem(other_client, code, ip="198.51.100.98").status_code == 200


def test_redeem_is_throttled_per_address_across_users(make_user, three_per_minute):
    for n in range(3):
        redeem(bearer_client(make_user(f"guesser-{n}")), "WRONG-CODE", ip="192.0.2.1")

    code = new_code()
    assert_throttled(redeem(bearer_client(make_user("guesser-9")), code, ip="192.0.2.1"))
    assert redeem(bearer_client(make_user("elsewhere")), code, ip="192.0.2.2").status_code == 200


def test_redeem_reads_in_constant_queries(auth_client, django_assert_max_num_queries):
    code = new_code()
    # the token's user; claim, code and batch; the wallet, its move, the entry; the code's entry;
    # the savepoint pair that stands for BEGIN/COMMIT inside a test's transaction
    with django_assert_max_num_queries(9):
        assert redeem(auth_client, code).status_code == 200
