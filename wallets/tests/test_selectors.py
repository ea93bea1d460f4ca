import pytest

from tests.helpers.money import reserve
from wallets import services
from wallets.models import Wallet
from wallets.selectors import wallet_for_user

pytestmark = pytest.mark.django_db


def test_wallet_for_user_reads_the_stored_balance_in_one_query(user, django_assert_num_queries):
    hold = reserve(user=user, amount=30)
    services.wallet_settle(hold_id=hold.pk, cost=12, description="reply")
    reserve(user=user, amount=5)
    with django_assert_num_queries(1):
        wallet = wallet_for_user(user=user)
    assert (wallet.pk, wallet.balance, wallet.held, wallet.available) == (
        Wallet.objects.get(user=user).pk,
        88,
        5,
        83,
    )


def test_wallet_for_user_without_a_wallet_reads_zero_and_writes_nothing(walletless_user):
    wallet = wallet_for_user(user=walletless_user)
    assert (wallet.pk, wallet.balance, wallet.held, wallet.available) == (None, 0, 0, 0)
    assert not Wallet.objects.filter(user=walletless_user).exists()
