"""The admin's index in support's sections: People, Money, Chats, Reports, then the libraries' Access."""

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from core.admin_site import SECTIONS, ParleyAdminSite

pytestmark = pytest.mark.django_db

SUPPORT_SECTIONS = [
    ("People", ["Users", "API keys"]),
    ("Money", ["Wallets", "Ledger entries", "Holds", "Code batches", "Redemption codes"]),
    ("Chats", ["Categories", "Chat sessions", "Usage records"]),
    ("Reports", ["Usage"]),
]
# simplejwt names its models in title case.
ACCESS = ("Access", ["Groups", "Social accounts", "Blacklisted Tokens", "Outstanding Tokens"])


def sections(response) -> list[tuple[str, list[str]]]:
    return [(app["name"], [model["name"] for model in app["models"]]) for app in response.context["app_list"]]


def test_the_site_is_parleys():
    assert isinstance(admin.site, ParleyAdminSite)


def test_a_superuser_sees_the_support_sections_then_the_libraries_under_access(client, staff_user):
    client.force_login(staff_user)

    # Superusers also see the catalogue (models and providers), which support has no permission on.
    chats = ("Chats", ["Categories", "Models", "Providers", "Chat sessions", "Usage records"])
    assert sections(client.get("/admin/")) == [*SUPPORT_SECTIONS[:2], chats, *SUPPORT_SECTIONS[3:], ACCESS]


def test_support_sees_its_sections_and_nothing_of_the_libraries(client, support_user):
    client.force_login(support_user)

    index = client.get("/admin/")

    assert sections(index) == SUPPORT_SECTIONS
    assert 'class="app-reports module"' in index.text
    # The sidebar of any other page lists the same.
    page = client.get("/admin/wallets/wallet/")
    assert [(app["name"], [m["name"] for m in app["models"]]) for app in page.context["available_apps"]] == (
        SUPPORT_SECTIONS
    )


def test_staff_with_one_permission_see_one_section_with_one_model(client, make_user):
    from django.contrib.auth.models import Permission

    clerk = make_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_hold"))
    client.force_login(clerk)

    assert sections(client.get("/admin/")) == [("Money", ["Holds"])]


def test_an_apps_page_shows_its_section(client, staff_user):
    client.force_login(staff_user)

    money = client.get("/admin/wallets/")
    access = client.get("/admin/token_blacklist/")

    assert sections(money) == [SUPPORT_SECTIONS[1]]
    assert money.context["title"] == "Money administration"
    assert sections(access) == [ACCESS]  # any of the libraries' apps: the whole Access section
    assert client.get("/admin/reports/").status_code == 404  # Reports is no app


def test_allauths_unused_models_are_not_in_the_admin(client, staff_user):
    client.force_login(staff_user)

    for model in (EmailAddress, SocialApp, SocialToken):
        assert not admin.site.is_registered(model)
    for url in ("/admin/account/emailaddress/", "/admin/socialaccount/socialapp/", "/admin/account/"):
        assert client.get(url).status_code == 404, url
    for model in (Group, SocialAccount, OutstandingToken, BlacklistedToken):
        assert admin.site.is_registered(model)


def test_every_model_of_parleys_apps_is_placed_in_its_section():
    """A model registered later must be named in SECTIONS (else it sorts after the named ones)."""
    registered = {
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
        if model._meta.app_label in {"core", "accounts", "wallets", "chats"}
    }
    named = {(label, name) for label, names in SECTIONS.items() for name in names}

    assert registered == named
    assert all(apps.get_model(label, name) for label, name in named)
