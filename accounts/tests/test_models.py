import pytest

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_create_user_normalises_email_and_hashes_password():
    user = User.objects.create_user("carol", "a-long-enough-pass-123", email="Carol@EXAMPLE.com")

    assert (user.email, user.is_staff, user.is_superuser) == ("Carol@example.com", False, False)
    assert user.check_password("a-long-enough-pass-123")
    assert str(user) == "carol"


def test_create_user_without_password_has_an_unusable_one():
    assert not User.objects.create_user("carol").has_usable_password()


def test_create_user_needs_a_login_id():
    with pytest.raises(ValueError):
        User.objects.create_user("")


def test_create_superuser_is_staff_and_superuser():
    admin = User.objects.create_superuser("root", "a-long-enough-pass-123")

    assert (admin.is_staff, admin.is_superuser) == (True, True)


def test_natural_key_lookup_ignores_case(user):
    assert User.objects.get_by_natural_key("ALICE") == user
