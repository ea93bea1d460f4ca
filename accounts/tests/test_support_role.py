"""The support role: the group ``manage.py support_group`` sets up, and what its members may do.

A member is staff in the ``Support`` group, not a superuser (the ``support_user``
fixture). They serve customers; staff accounts, and who is staff, stay with the
administrators.
"""

import io

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from accounts.models import User
from accounts.roles import SUPPORT_GROUP, SUPPORT_PERMISSIONS

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"


def change_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def granted(group: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user)
    return client


def profile_form(user, **changes) -> dict:
    return {
        "login_id": user.login_id,
        "email": user.email,
        "display_name": user.display_name,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "socialaccount_set-TOTAL_FORMS": "0",
        "socialaccount_set-INITIAL_FORMS": "0",
        **changes,
    }


def test_support_group_command_creates_the_group_then_sets_it_back_to_the_list():
    out = io.StringIO()
    call_command("support_group", stdout=out)

    group = Group.objects.get(name=SUPPORT_GROUP)
    assert granted(group) == set(SUPPORT_PERMISSIONS)
    assert (
        out.getvalue()
        == f"Created the 'Support' group: {len(SUPPORT_PERMISSIONS)} permissions, 0 member(s).\n"
    )

    group.permissions.remove(Permission.objects.get(codename="adjust_wallet"))
    group.permissions.add(Permission.objects.get(codename="delete_user"))
    out = io.StringIO()
    call_command("support_group", stdout=out)

    assert granted(group) == set(SUPPORT_PERMISSIONS)
    assert out.getvalue().startswith("Updated the 'Support' group")
    assert Group.objects.filter(name=SUPPORT_GROUP).count() == 1


def test_support_edits_a_customers_profile_but_cannot_make_them_staff(support_client, user):
    page = support_client.get(change_url(user))
    assert page.status_code == 200
    assert {"is_staff", "is_superuser", "groups", "user_permissions"}.isdisjoint(
        page.context["adminform"].form.fields
    )

    support = Group.objects.get(name=SUPPORT_GROUP).pk
    response = support_client.post(
        change_url(user),
        profile_form(user, display_name="Alice B.", is_staff="on", is_superuser="on", groups=[support]),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.display_name, user.is_staff, user.is_superuser) == ("Alice B.", False, False)
    assert not user.groups.exists()


def test_a_staff_account_is_read_only_to_support(support_client, staff_user):
    email = staff_user.email
    page = support_client.get(change_url(staff_user))
    assert page.status_code == 200  # they may look
    assert page.context["has_change_permission"] is False

    edit = support_client.post(change_url(staff_user), profile_form(staff_user, email="taken@example.com"))
    password = support_client.post(
        f"/admin/accounts/user/{staff_user.pk}/password/",
        {
            "usable_password": "true",
            "password1": "a-long-enough-pass-123",
            "password2": "a-long-enough-pass-123",
        },
    )

    assert (edit.status_code, password.status_code) == (403, 403)
    staff_user.refresh_from_db()
    assert staff_user.email == email
    assert not staff_user.check_password("a-long-enough-pass-123")


def test_support_deactivates_customers_but_not_staff(support_client, user, staff_user):
    response = support_client.post(
        CHANGELIST, {"action": "deactivate_users", "_selected_action": [user.pk, staff_user.pk]}, follow=True
    )

    assert list(User.objects.filter(pk__in=[user.pk, staff_user.pk], is_active=True)) == [staff_user]
    assert [str(m) for m in response.context["messages"]] == [
        "Only administrators can deactivate or reactivate staff accounts: 1 left as they were.",
        "Deactivated 1 user(s).",
    ]


def test_support_does_not_reactivate_staff(support_client, make_user):
    dora = make_user("dora", is_active=False)
    former = make_user("former.admin", is_active=False, is_staff=True)

    support_client.post(CHANGELIST, {"action": "activate_users", "_selected_action": [dora.pk, former.pk]})

    assert list(User.objects.filter(pk__in=[dora.pk, former.pk], is_active=True)) == [dora]


def test_support_sees_a_customers_linked_google_account(support_client, user, settings):
    settings.GOOGLE_CLIENT_ID = []
    SocialAccount.objects.create(user=user, provider="google", uid="1234567890")

    page = support_client.get(change_url(user))

    assert page.status_code == 200
    assert b"1234567890" in page.content
    assert support_client.get("/admin/socialaccount/socialaccount/").status_code == 403  # not its list
