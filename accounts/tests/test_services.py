"""accounts.services and the Google linking, called directly."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.google import google_user_get_or_create
from accounts.models import User
from core.errors import Conflict, InvalidCredentials, TokenNotValid, ValidationFailed
from tests.helpers.clients import PASSWORD
from tests.helpers.concurrency import requires_postgres

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "a-long-enough-pass-123"


def refresh_for(user) -> str:
    return services.tokens_issue(user=user)["refresh"]


# --- user_register -----------------------------------------------------------


def test_register_creates_user_with_hashed_password():
    user = services.user_register(login_id="carol", password=GOOD_PASSWORD, email="Carol@EXAMPLE.COM")

    assert user.pk is not None
    assert user.email == "Carol@example.com"
    assert user.password != GOOD_PASSWORD
    assert user.check_password(GOOD_PASSWORD)


def test_register_refuses_login_id_taken_in_other_case(user):
    with pytest.raises(Conflict) as raised:
        services.user_register(login_id="ALICE", password=GOOD_PASSWORD)

    assert "login_id" in raised.value.details


def test_register_checks_password_against_the_user(user):
    with pytest.raises(ValidationFailed) as raised:
        services.user_register(login_id="carolyn-smith", password="carolyn-smith1")

    assert raised.value.details["password"]
    assert not User.objects.filter(login_id="carolyn-smith").exists()


def test_register_normalises_the_login_id_nfkc():
    user = services.user_register(login_id="\uff41\uff44\uff41", password=GOOD_PASSWORD)

    assert (user.login_id, user.login_key) == ("ada", "ada")


@pytest.mark.parametrize("login_id", ["ÉMILE", "e\u0301mile", "\uff45\u0301mile"])
def test_register_refuses_login_id_taken_in_other_case_or_width(make_user, login_id):
    make_user("émile")

    with pytest.raises(Conflict):
        services.user_register(login_id=login_id, password=GOOD_PASSWORD)


@pytest.fixture
def another_constraint_refuses_new_users():
    """A ``post_save`` receiver that breaks a constraint that has nothing to do with login ids.

    It stands for any of them, such as a squatted idempotency key of the
    sign-up bonus that the wallet's receiver writes.
    """
    from django.contrib.auth.models import Group
    from django.db.models.signals import post_save

    Group.objects.create(name="taken")

    def receiver(sender, instance, created, raw, **kwargs):
        if created and not raw:
            Group.objects.create(name="taken")

    post_save.connect(receiver, sender=User, dispatch_uid="test-another-constraint")
    yield
    post_save.disconnect(sender=User, dispatch_uid="test-another-constraint")


def test_register_does_not_call_another_integrity_error_a_taken_login_id(
    another_constraint_refuses_new_users,
):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        services.user_register(login_id="carol", password=GOOD_PASSWORD)

    assert not User.objects.filter(login_id="carol").exists()


def test_register_api_answers_500_not_409_for_another_integrity_error(
    another_constraint_refuses_new_users, api_client
):
    response = api_client.post(
        "/auth/register", {"login_id": "carol", "password": GOOD_PASSWORD}, format="json"
    )

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


def test_google_sign_up_does_not_hide_another_integrity_error(another_constraint_refuses_new_users):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        google_user_get_or_create(claims=claims())

    assert not User.objects.exclude(login_id="alice").exists()


def test_google_login_id_skips_ids_taken_in_other_case_or_width(make_user):
    make_user("ÇAROL.JONES")
    make_user("Ç\uff21\uff32\uff2f\uff2c.jones-2")  # fullwidth "AROL": the same as çarol.jones-2

    user, created = google_user_get_or_create(claims=claims(email="çarol.jones@gmail.com"))

    assert created
    assert user.login_id == "çarol.jones-3"


def test_google_login_id_is_nfkc_normalised():
    user, _ = google_user_get_or_create(claims=claims(email="\uff43arol@gmail.com"))

    assert user.login_id == "carol"


def test_google_login_id_fits_once_folded():
    # "ß" folds to "ss": 150 of them would make a key of 300 characters.
    user, _ = google_user_get_or_create(claims=claims(email=f"{'ß' * 60}@gmail.com"))

    assert len(user.login_key) <= 150
    assert user.login_id.startswith("ß")


def test_login_id_is_unique_ignoring_case_in_the_database(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(login_id="ALICE")


# --- user_authenticate -------------------------------------------------------


def test_authenticate_finds_user_in_any_case(user):
    assert services.user_authenticate(login_id="aLiCe", password=PASSWORD) == user


@pytest.mark.parametrize(("login_id", "password"), [("alice", "wrong"), ("nobody", PASSWORD)])
def test_authenticate_refuses_bad_credentials(user, login_id, password):
    with pytest.raises(InvalidCredentials):
        services.user_authenticate(login_id=login_id, password=password)


def test_authenticate_refuses_inactive_user(make_user):
    make_user("dora", is_active=False)

    with pytest.raises(InvalidCredentials):
        services.user_authenticate(login_id="dora", password=PASSWORD)


# --- user_update_profile -------------------------------------------------------


def test_update_profile_changes_only_what_is_given(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        services.user_update_profile(user=user, display_name="Al")

    user.refresh_from_db()
    assert (user.display_name, user.email) == ("Al", "alice@example.com")


def test_update_profile_with_nothing_writes_nothing(user, django_assert_num_queries):
    with django_assert_num_queries(0):
        services.user_update_profile(user=user)


# --- tokens ------------------------------------------------------------------


def test_refresh_rotates_once(user):
    old = refresh_for(user)

    pair = services.token_refresh(refresh=old)

    assert set(pair) == {"access", "refresh"}
    with pytest.raises(TokenNotValid):
        services.token_refresh(refresh=old)


def test_refresh_of_deleted_user_is_token_not_valid(walletless_user):
    refresh = refresh_for(walletless_user)
    walletless_user.delete()

    with pytest.raises(TokenNotValid):
        services.token_refresh(refresh=refresh)


def test_logout_of_deleted_user_still_kills_the_token(walletless_user):
    refresh = refresh_for(walletless_user)
    walletless_user.delete()

    services.user_logout(refresh=refresh)

    assert BlacklistedToken.objects.filter(token__jti=RefreshToken(refresh, verify=False)["jti"]).exists()


def test_logout_twice_is_refused(user):
    refresh = refresh_for(user)
    services.user_logout(refresh=refresh)

    with pytest.raises(TokenNotValid):
        services.user_logout(refresh=refresh)


def test_revoke_all_counts_live_tokens_once(user, other_user):
    for _ in range(3):
        refresh_for(user)
    services.user_logout(refresh=refresh_for(user))
    others = refresh_for(other_user)

    assert services.tokens_revoke_all(user=user) == 3
    assert services.tokens_revoke_all(user=user) == 0
    assert services.token_refresh(refresh=others)


def test_change_password_revokes_every_refresh_token(user):
    tokens = [refresh_for(user) for _ in range(2)]

    services.user_change_password(user=user, old_password=PASSWORD, new_password=GOOD_PASSWORD)

    for refresh in tokens:
        with pytest.raises(TokenNotValid):
            services.token_refresh(refresh=refresh)
    assert User.objects.get(pk=user.pk).check_password(GOOD_PASSWORD)


def test_change_password_refuses_wrong_old_password_and_keeps_tokens(user):
    refresh = refresh_for(user)

    with pytest.raises(ValidationFailed) as raised:
        services.user_change_password(user=user, old_password="nope", new_password=GOOD_PASSWORD)

    assert "old_password" in raised.value.details
    assert services.token_refresh(refresh=refresh)


# --- users_deactivate / users_activate -------------------------------------------


def test_deactivate_counts_and_blacklists(user, other_user, make_user):
    dora = make_user("dora", is_active=False)
    refresh = refresh_for(user)

    assert services.users_deactivate(users=[user, other_user, dora]) == 2

    assert not User.objects.filter(is_active=True, pk__in=[user.pk, other_user.pk]).exists()
    assert not OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).exists()
    with pytest.raises(TokenNotValid):
        services.token_refresh(refresh=refresh)


def test_reactivated_user_does_not_get_old_sessions_back(user):
    refresh = refresh_for(user)
    services.users_deactivate(users=[user])

    assert services.users_activate(users=[user]) == 1

    with pytest.raises(TokenNotValid):
        services.token_refresh(refresh=refresh)
    assert services.user_authenticate(login_id="alice", password=PASSWORD) == user


# --- Google linking ------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    return {"sub": "42", "email": "carol@gmail.com", "email_verified": True, "name": "Carol"} | overrides


def test_google_link_creates_then_finds():
    created_user, created = google_user_get_or_create(claims=claims())
    found_user, found_created = google_user_get_or_create(claims=claims(name="C."))

    assert (created, found_created) == (True, False)
    assert found_user == created_user
    assert SocialAccount.objects.get().extra_data["name"] == "C."


def test_google_link_falls_back_to_sub_when_numbers_run_out(make_user):
    make_user("carol")
    for n in range(2, 10):
        make_user(f"carol-{n}")

    user, _ = google_user_get_or_create(claims=claims())

    assert user.login_id == "google-42"


def test_google_link_gets_a_random_suffix_when_everything_is_taken(make_user):
    for login_id in ["carol", *[f"carol-{n}" for n in range(2, 10)], "google-42"]:
        make_user(login_id)

    user, _ = google_user_get_or_create(claims=claims())

    assert user.login_id.startswith("google-42-")
    assert len(user.login_id) == len("google-42-") + 8


def test_google_link_truncates_long_names():
    user, _ = google_user_get_or_create(claims=claims(name="N" * 500, email=f"{'x' * 300}@gmail.com"))

    assert len(user.display_name) == 150
    assert len(user.login_id) <= 150
    assert user.email == ""


# --- Races (PostgreSQL: real concurrent transactions) ----------------------------


def run_together(work: Callable[[], Any], times: int = 2) -> list[Any]:
    """Run ``work`` in ``times`` threads released at once; results or exceptions, in any order."""
    barrier = threading.Barrier(times)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refresh_of_one_token_rotates_it_once(user):
    refresh = refresh_for(user)

    results = run_together(lambda: services.token_refresh(refresh=refresh), times=4)

    assert sum(isinstance(result, dict) for result in results) == 1
    assert sum(isinstance(result, TokenNotValid) for result in results) == 3


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_of_one_login_id_in_different_spellings_make_one_user():
    spellings = iter(["émile", "ÉMILE", "e\u0301mile", "\uff45\u0301MILE"])
    lock = threading.Lock()

    def register():
        with lock:
            login_id = next(spellings)
        return services.user_register(login_id=login_id, password=GOOD_PASSWORD)

    results = run_together(register, times=4)

    assert sum(isinstance(result, User) for result in results) == 1
    assert sum(isinstance(result, Conflict) for result in results) == 3, results
    assert User.objects.count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_google_sign_ins_make_one_user():
    results = run_together(lambda: google_user_get_or_create(claims=claims()), times=4)

    assert not [result for result in results if isinstance(result, Exception)], results
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({user.pk for user, _ in results}) == 1
    assert User.objects.count() == 1
    assert SocialAccount.objects.count() == 1
