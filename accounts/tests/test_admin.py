"""The user admin, driven through its URLs by a logged-in staff member."""

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.management import CommandError, call_command
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import User

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"
ADD = "/admin/accounts/user/add/"
NEW_PASSWORD = "a-long-enough-pass-123"


def change_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def listed(response) -> set[str]:
    return {user.login_id for user in response.context["cl"].result_list}


def test_changelist_lists_users(staff_client, user, other_user):
    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    assert {"alice", "bob", "staff"} <= listed(response)


@pytest.mark.parametrize(
    ("query", "expected"), [("ALI", {"alice"}), ("bob@example", {"bob"}), ("nobody", set())]
)
def test_changelist_searches_login_id_and_email(staff_client, user, other_user, query, expected):
    assert listed(staff_client.get(CHANGELIST, {"q": query})) == expected


def test_changelist_filters_active_and_staff(staff_client, user, make_user):
    make_user("dora", is_active=False)

    assert listed(staff_client.get(CHANGELIST, {"is_active__exact": "0"})) == {"dora"}
    assert listed(staff_client.get(CHANGELIST, {"is_staff__exact": "1"})) == {"staff"}


def test_add_form_asks_for_login_id_and_password_twice(staff_client):
    response = staff_client.get(ADD)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert {"login_id", "password1", "password2"} <= set(form.fields)


def test_add_form_creates_a_user_who_can_log_in(staff_client, api_client):
    response = staff_client.post(
        ADD,
        {
            "login_id": "carol",
            "email": "carol@example.com",
            "display_name": "Carol",
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    carol = User.objects.get(login_id="carol")
    assert (carol.email, carol.display_name, carol.is_active) == ("carol@example.com", "Carol", True)
    login = api_client.post("/auth/login", {"login_id": "carol", "password": NEW_PASSWORD}, format="json")
    assert login.status_code == 200


def test_add_form_refuses_login_id_taken_in_other_case(staff_client, user):
    passwords = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    response = staff_client.post(ADD, {"login_id": "ALICE", **passwords})

    assert response.status_code == 200
    assert "login_id" in response.context["adminform"].form.errors
    assert User.objects.filter(login_id__iexact="alice").count() == 1


def test_add_form_refuses_mismatched_passwords(staff_client):
    response = staff_client.post(
        ADD, {"login_id": "carol", "usable_password": "true", "password1": NEW_PASSWORD, "password2": "other"}
    )

    assert response.status_code == 200
    assert "password2" in response.context["adminform"].form.errors
    assert not User.objects.filter(login_id="carol").exists()


def test_change_form_edits_profile(staff_client, user):
    assert staff_client.get(change_url(user)).status_code == 200

    response = staff_client.post(
        change_url(user),
        {
            "login_id": "alice",
            "email": "alice@new.example",
            "display_name": "Alice B.",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "socialaccount_set-TOTAL_FORMS": "0",
            "socialaccount_set-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.email, user.display_name) == ("alice@new.example", "Alice B.")


def test_change_form_refuses_renaming_onto_another_login_id(staff_client, user, other_user):
    response = staff_client.post(
        change_url(user),
        {
            "login_id": "BOB",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "socialaccount_set-TOTAL_FORMS": "0",
            "socialaccount_set-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "login_id" in response.context["adminform"].form.errors


def test_change_form_shows_linked_google_account(staff_client, user, settings):
    settings.GOOGLE_CLIENT_ID = []  # the page must not depend on Google being configured
    SocialAccount.objects.create(user=user, provider="google", uid="1234567890")

    response = staff_client.get(change_url(user))

    assert response.status_code == 200
    assert b"1234567890" in response.content


def test_admin_password_change_page(staff_client, user):
    response = staff_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_deactivate_action_deactivates_and_ends_sessions(staff_client, user, other_user, api_client):
    refresh = str(RefreshToken.for_user(user))

    response = staff_client.post(
        CHANGELIST, {"action": "deactivate_users", "_selected_action": [user.pk, other_user.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "Deactivated 2 user(s)." in [str(m) for m in response.context["messages"]]
    assert not User.objects.filter(pk__in=[user.pk, other_user.pk], is_active=True).exists()
    assert OutstandingToken.objects.get(user=user).blacklistedtoken
    reused = api_client.post("/auth/token/refresh", {"refresh": refresh}, format="json")
    assert reused.status_code == 401


def test_deactivate_action_spares_the_acting_staff_member(staff_client, staff_user, user):
    response = staff_client.post(
        CHANGELIST, {"action": "deactivate_users", "_selected_action": [staff_user.pk, user.pk]}, follow=True
    )

    staff_user.refresh_from_db()
    user.refresh_from_db()
    assert staff_user.is_active
    assert not user.is_active
    assert "You cannot deactivate your own account." in [str(m) for m in response.context["messages"]]


def test_reactivate_action(staff_client, make_user):
    dora = make_user("dora", is_active=False)

    staff_client.post(CHANGELIST, {"action": "activate_users", "_selected_action": [dora.pk]})

    dora.refresh_from_db()
    assert dora.is_active


def test_admin_is_closed_to_non_staff(client, user):
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- Login ids in the admin and createsuperuser: the same rule as the API -------


@pytest.mark.parametrize("login_id", ["ÉMILE", "\uff45\u0301mile"])
def test_add_form_refuses_login_id_taken_in_other_case_or_width(staff_client, make_user, login_id):
    make_user("émile")
    passwords = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    response = staff_client.post(ADD, {"login_id": login_id, **passwords})

    assert response.status_code == 200
    assert "login_id" in response.context["adminform"].form.errors
    assert User.objects.count() == 2  # émile and staff


def test_add_form_stores_the_login_id_nfkc_normalised(staff_client):
    passwords = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    response = staff_client.post(ADD, {"login_id": "\uff41\uff44\uff41", **passwords})

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.filter(login_id="ada").exists()


@pytest.mark.parametrize("login_id", ["ÉMILE", "\uff45\u0301mile"])
def test_createsuperuser_refuses_login_id_taken_in_other_case_or_width(make_user, login_id):
    make_user("émile")

    with pytest.raises(CommandError, match="already taken"):
        call_command("createsuperuser", "--noinput", "--login_id", login_id)

    assert User.objects.count() == 1


def test_createsuperuser_stores_the_login_id_nfkc_normalised():
    call_command("createsuperuser", "--noinput", "--login_id", "\uff41\uff44\uff41")

    assert User.objects.get().login_id == "ada"


def test_createsuperuser_noinput_takes_login_id_and_password_from_the_environment(
    monkeypatch, client, api_client
):
    """The README's unattended form. Django names the variable after USERNAME_FIELD, ``login_id``
    here: DJANGO_SUPERUSER_LOGIN_ID, not the DJANGO_SUPERUSER_USERNAME of Django's own docs."""
    monkeypatch.setenv("DJANGO_SUPERUSER_LOGIN_ID", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)

    call_command("createsuperuser", "--noinput")

    root = User.objects.get()
    assert (root.login_id, root.is_staff, root.is_superuser) == ("root", True, True)
    login = api_client.post("/auth/login", {"login_id": "root", "password": NEW_PASSWORD}, format="json")
    assert login.status_code == 200, login.content
    admin_login = client.post("/admin/login/", {"username": "root", "password": NEW_PASSWORD})
    assert admin_login.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_createsuperuser_noinput_does_not_read_djangos_username_variable(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)

    with pytest.raises(CommandError, match="You must use --login_id with --noinput"):
        call_command("createsuperuser", "--noinput")

    assert not User.objects.exists()


# --- Accounts are deactivated, never deleted: the ledger outlives the user --------


def test_user_with_a_wallet_has_no_delete(staff_client, user):
    assert user.wallet  # every user gets one when they sign up

    page = staff_client.get(change_url(user))

    assert page.status_code == 200
    assert f"/admin/accounts/user/{user.pk}/delete/".encode() not in page.content
    assert b"untick Active" in page.content


def test_delete_page_of_a_user_with_a_wallet_says_to_deactivate_instead(staff_client, user):
    response = staff_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"}, follow=True)

    assert User.objects.filter(pk=user.pk).exists()
    assert response.redirect_chain[-1][0] == change_url(user)
    messages = [str(m) for m in response.context["messages"]]
    assert any("Deactivate the account instead" in message for message in messages), messages


def test_changelist_offers_no_bulk_delete(staff_client, user):
    response = staff_client.get(CHANGELIST)

    assert "delete_selected" not in dict(response.context["action_form"].fields["action"].choices)
    staff_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"})
    assert User.objects.filter(pk=user.pk).exists()


def test_user_without_a_wallet_can_still_be_deleted(staff_client, make_user, settings):
    settings.INITIAL_WALLET_BALANCE = 0  # no ledger entry, so the wallet itself can go
    stray = make_user("stray")
    type(stray.wallet).objects.filter(pk=stray.wallet.pk).delete()

    response = staff_client.post(f"/admin/accounts/user/{stray.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=stray.pk).exists()


# --- API keys -------------------------------------------------------------------

KEYS_CHANGELIST = "/admin/accounts/apikey/"


def listed_keys(response) -> set[str]:
    return {key.name for key in response.context["cl"].result_list}


@pytest.fixture
def keys(user, other_user):
    mine, secret = services.api_key_create(user=user, name="alice-laptop")
    theirs, _ = services.api_key_create(user=other_user, name="bob-ci")
    return mine, theirs, secret


def test_key_changelist_lists_keys_without_secrets_or_digests(staff_client, keys):
    mine, _, secret = keys

    response = staff_client.get(KEYS_CHANGELIST)

    assert response.status_code == 200
    assert listed_keys(response) == {"alice-laptop", "bob-ci"}
    page = response.content.decode()
    assert mine.prefix in page
    assert secret not in page and mine.digest not in page


def test_key_changelist_filters_by_user(staff_client, keys, user):
    response = staff_client.get(KEYS_CHANGELIST, {"user__id__exact": user.pk})

    assert listed_keys(response) == {"alice-laptop"}


@pytest.mark.parametrize(("query", "expected"), [("bob", {"bob-ci"}), ("laptop", {"alice-laptop"})])
def test_key_changelist_searches_login_id_and_name(staff_client, keys, query, expected):
    # The prefix is searched too, and a random one may spell the query ("pk-IWlWBobN8…").
    by_prefix = {key.name for key in keys[:2] if query.lower() in key.prefix.lower()}
    assert listed_keys(staff_client.get(KEYS_CHANGELIST, {"q": query})) == expected | by_prefix


def test_key_changelist_searches_the_prefix(staff_client, keys):
    mine, _, _ = keys

    assert listed_keys(staff_client.get(KEYS_CHANGELIST, {"q": mine.prefix})) == {"alice-laptop"}


def test_key_changelist_filters_by_state(staff_client, keys):
    mine, _, _ = keys
    services.api_keys_revoke(keys=[mine])

    assert listed_keys(staff_client.get(KEYS_CHANGELIST, {"state": "revoked"})) == {"alice-laptop"}
    assert listed_keys(staff_client.get(KEYS_CHANGELIST, {"state": "live"})) == {"bob-ci"}
    assert listed_keys(staff_client.get(KEYS_CHANGELIST, {"state": "expired"})) == set()


def test_key_change_page_is_read_only_without_the_digest(staff_client, keys):
    mine, _, secret = keys

    response = staff_client.get(f"{KEYS_CHANGELIST}{mine.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert mine.digest not in page and secret not in page
    assert "live" in page


def test_staff_revoke_keys_with_the_action(staff_client, keys):
    mine, theirs, _ = keys

    response = staff_client.post(
        KEYS_CHANGELIST, {"action": "revoke_keys", "_selected_action": [str(mine.pk)]}, follow=True
    )

    assert response.status_code == 200
    assert "Revoked 1 API key(s)." in response.content.decode()
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None


def test_keys_cannot_be_added_or_deleted_in_the_admin(staff_client, keys):
    mine, _, _ = keys

    assert staff_client.get(f"{KEYS_CHANGELIST}add/").status_code == 403
    assert staff_client.get(f"{KEYS_CHANGELIST}{mine.pk}/delete/").status_code == 403
    actions = dict(staff_client.get(KEYS_CHANGELIST).context["action_form"].fields["action"].choices)
    assert "revoke_keys" in actions and "delete_selected" not in actions
