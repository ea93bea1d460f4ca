import pytest

from wallets.models import Wallet


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The personas' passwords are hashed on every test; these tests are about money."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def wallet(user) -> Wallet:
    """Alice's wallet: made by the post_save receiver with the 100-credit bonus."""
    return Wallet.objects.get(user=user)
