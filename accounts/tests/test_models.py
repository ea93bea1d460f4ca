from importlib import import_module

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User, login_key, login_key_digest

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


# --- One account per login id, ignoring case and width, on every database -------


@pytest.mark.parametrize(
    ("first", "second"),
    [("émile", "ÉMILE"), ("ada", "\uff41\uff44\uff41"), ("straße", "STRASSE"), ("Å", "\u212b")],
)
def test_database_refuses_a_second_spelling_of_a_login_id(first, second):
    User.objects.create_user(first)

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(login_id=second)


def test_save_normalises_the_login_id_and_keeps_its_key_in_step(user):
    user.login_id = "\uff21lice2"
    user.save(update_fields=["login_id"])

    user.refresh_from_db()
    assert (user.login_id, user.login_key) == ("Alice2", "alice2")


@pytest.mark.parametrize("login_id", ["ÉMILE", "\uff45\u0301mile", "e\u0301mile"])
def test_natural_key_lookup_ignores_case_and_width(make_user, login_id):
    emile = make_user("émile")

    assert User.objects.get_by_natural_key(login_id) == emile


def test_login_key_folds_case_and_width():
    assert login_key("\uff21\uff44\uff41") == login_key("ada") == "ada"
    assert login_key("Straße") == login_key("STRASSE") == "strasse"


def test_login_key_digest_takes_any_string():
    assert login_key_digest("\ud800") != login_key_digest("\ud801")
    assert login_key_digest(" ADA ") == login_key_digest("\uff41\uff44\uff41")


def test_migration_fills_keys_and_names_clashing_login_ids():
    from django.apps import apps

    fill_login_keys = import_module("accounts.migrations.0002_user_login_key").fill_login_keys
    User.objects.bulk_create([User(login_id="Zoë", login_key="a"), User(login_id="bob", login_key="b")])

    fill_login_keys(apps, None)

    assert set(User.objects.values_list("login_key", flat=True)) == {"zoë", "bob"}
    User.objects.bulk_create([User(login_id="ZOË", login_key="c")])  # as SQLite's old constraint let in
    with pytest.raises(RuntimeError, match="'Zoë', 'ZOË'"):
        fill_login_keys(apps, None)
