from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from wallets.models import Hold, Wallet
from wallets.services import wallet_hold


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The personas' passwords are hashed on every test; these tests are about money."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def wallet(user) -> Wallet:
    """Alice's wallet: made by the post_save receiver with the 100-credit bonus."""
    return Wallet.objects.get(user=user)


def age_hold(hold: Hold, *, minutes: int) -> None:
    """Pretend ``hold`` was made ``minutes`` ago."""
    Hold.objects.filter(pk=hold.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def reserve(*, user, amount: int, description: str = "") -> Hold:
    """``wallet_hold`` in its own committed transaction, as the chats app calls it with its rows."""
    with transaction.atomic():
        return wallet_hold(user=user, amount=amount, description=description)
