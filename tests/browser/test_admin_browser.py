"""Support staff in a real browser: the Django admin in headless Chromium.

A staff member signs in through the login form, finds a customer by login id,
tops the wallet up with a reason through the admin's form, sees the ledger
entry and the new balance, and reads one of the customer's chat sessions.
The server is pytest-django's ``live_server`` (the admin is synchronous); the
browser is Debian's Chromium driven by Playwright (see ``chromium.py``).

``PARLEY_SCREENSHOT=docs/admin-wallet.png`` writes the wallet page after the
top-up there (the README's picture); otherwise it goes to ``tmp_path``.
"""

import os
import re
from pathlib import Path

import pytest
from model_bakery import baker

from chats.models import ChatSession, Message
from tests.helpers.admin_pages import admin_login
from tests.helpers.clients import PASSWORD
from wallets.models import LedgerEntry, Wallet

from .chromium import skip_browser_tests, unavailable_reason

if (_reason := unavailable_reason()) is not None:
    skip_browser_tests(_reason)

from playwright.sync_api import Page, expect  # only once it is known to be installed

CUSTOMER = "carol.customer"
REASON = "Goodwill credit: March invoice mix-up (ticket #4821)"
QUESTION = "Why was I charged twice for my March invoice?"
ANSWER = "I'm sorry about that. A support agent will look at your invoice."


def admin_search(page: Page, changelist: str, query: str) -> None:
    page.goto(changelist)
    page.locator("#searchbar").fill(query)
    page.locator("#searchbar").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q="))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)


@pytest.fixture
def customer(make_user):
    return make_user(CUSTOMER, email="carol@example.com", display_name="Carol")


@pytest.fixture
def namesake(make_user):
    """A near namesake with a session of their own: the searches must not find them."""
    return make_user("carol.other", email="other@example.com")


@pytest.fixture
def chat_session(customer, namesake, general_category):
    general = general_category
    baker.make(ChatSession, user=namesake, category=general, title="Someone else's question")
    session = baker.make(ChatSession, user=customer, category=general, title="Billing question")
    baker.make(Message, session=session, role=Message.Role.USER, content=QUESTION)
    baker.make(
        Message,
        session=session,
        role=Message.Role.ASSISTANT,
        content=ANSWER,
        prompt_tokens=12,
        completion_tokens=14,
        cost=1,
    )
    return session


def test_staff_finds_user_tops_up_wallet_and_reads_a_session(
    in_browser, staff_user, customer, chat_session, tmp_path
):
    before = Wallet.objects.get(user=customer).balance
    wallet_pk = customer.wallet.pk
    screenshot = Path(os.environ.get("PARLEY_SCREENSHOT") or tmp_path / "admin-wallet.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)

    def support_work(page: Page) -> None:
        admin_login(page, staff_user.login_id, PASSWORD)
        expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

        # Find the customer by login id in the user admin; the user page links the wallet.
        admin_search(page, "/admin/accounts/user/", CUSTOMER)
        page.locator("#result_list tbody tr").get_by_role("link", name=CUSTOMER).click()
        expect(page.locator("#id_login_id")).to_have_value(CUSTOMER)
        expect(page.locator(".field-wallet_link")).to_contain_text(f"Wallet of {CUSTOMER}")

        # The wallet admin, searched by login id, shows the balance.
        admin_search(page, "/admin/wallets/wallet/", CUSTOMER)
        row = page.locator("#result_list tbody tr")
        expect(row.locator(".field-balance")).to_have_text(str(before))
        row.get_by_role("link", name=CUSTOMER).click()
        expect(page.get_by_role("heading", name=f"Wallet of {CUSTOMER}")).to_be_visible()
        expect(page.locator(".field-balance .readonly")).to_have_text(str(before))

        # Top up through the admin's form; a mistaken negative amount is refused, nothing is written.
        page.get_by_role("link", name="Top up / adjust").click()
        expect(page.locator("#id_kind")).to_have_value("topup")
        page.get_by_label("Amount").fill("-250")
        page.get_by_label("Reason").fill(REASON)
        page.get_by_role("button", name="Record").click()
        expect(page.locator(".errorlist")).to_have_text("Must be greater than zero.")
        expect(page.get_by_text(f"Balance {before}, held 0, available {before} credits.")).to_be_visible()
        page.get_by_label("Amount").fill("250")
        page.get_by_label("Reason").fill(REASON)
        page.get_by_role("button", name="Record").click()

        # Back on the wallet page: the message, the new balance, the ledger entry on top.
        expect(page).to_have_url(re.compile(rf"/admin/wallets/wallet/{wallet_pk}/change/$"))
        expect(page.locator(".messagelist .success")).to_have_text(
            f"Top-up of +250 credits recorded; the balance is now {before + 250}."
        )
        expect(page.locator(".field-balance .readonly")).to_have_text(str(before + 250))
        expect(page.locator(".field-available .readonly")).to_have_text(str(before + 250))
        newest = page.locator("#entries-group tbody tr.form-row").first
        expect(newest.locator(".field-kind")).to_have_text("Top-up")
        expect(newest.locator(".field-amount")).to_have_text("250")
        expect(newest.locator(".field-balance_after")).to_have_text(str(before + 250))
        expect(newest.locator(".field-description")).to_have_text(REASON)
        expect(newest.locator(".field-actor")).to_have_text(staff_user.login_id)
        page.screenshot(path=screenshot, full_page=True)

        # One of the customer's chat sessions, found by login id, with its messages.
        admin_search(page, "/admin/chats/chatsession/", CUSTOMER)
        page.locator("#result_list tbody tr").get_by_role("link", name="Billing question").click()
        expect(page.locator(".field-user .readonly")).to_contain_text(CUSTOMER)
        messages = page.locator("#messages-group tbody tr.form-row")
        expect(messages).to_have_count(2)
        expect(messages.nth(0).locator(".field-content")).to_have_text(QUESTION)
        expect(messages.nth(1).locator(".field-content")).to_have_text(ANSWER)

    in_browser(support_work)

    # And the database agrees: one top-up entry, by the staff member, in the balance.
    wallet = Wallet.objects.get(user=customer)
    assert wallet.balance == before + 250
    entry = LedgerEntry.objects.get(wallet=wallet, kind=LedgerEntry.Kind.TOPUP)
    assert (entry.amount, entry.balance_after, entry.description) == (250, before + 250, REASON)
    assert entry.actor == staff_user
    assert wallet.entries.count() == 2  # the sign-up bonus and this top-up; the refused one left none
    assert sum(wallet.entries.values_list("amount", flat=True)) == wallet.balance
    assert screenshot.stat().st_size > 10_000


SUPPORT_INDEX = [
    ("People", ["Users", "API keys"]),
    ("Money", ["Wallets", "Ledger entries", "Holds", "Code batches", "Redemption codes"]),
    ("Chats", ["Categories", "Chat sessions", "Usage records"]),
    ("Reports", ["Usage"]),
]
LIBRARIES = [
    "Access",
    "Groups",
    "Authentication and Authorization",
    "Accounts",
    "Email addresses",
    "Social Accounts",
    "Social applications",
    "Token Blacklist",
    "Outstanding Tokens",
]


def test_support_sees_its_work_in_its_own_words_and_not_the_libraries(in_browser, support_user):
    """A support member (staff in the Support group, not a superuser): the index, then the sidebar."""

    def read_index(page: Page) -> None:
        admin_login(page, support_user.login_id, PASSWORD)
        expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

        sections = page.locator("#content-main .module")
        expect(sections.locator("caption")).to_have_text([name for name, _ in SUPPORT_INDEX])
        for index, (_, models) in enumerate(SUPPORT_INDEX):
            expect(sections.nth(index).locator('th[scope="row"]')).to_have_text(models)
        for name in LIBRARIES:
            expect(page.get_by_text(name, exact=True)).to_have_count(0)

        # Every other page's sidebar: the same sections, in the same order.
        sections.nth(0).get_by_role("link", name="Users", exact=True).click()
        expect(page).to_have_url(re.compile(r"/admin/accounts/user/$"))
        sidebar = page.locator("#nav-sidebar .module")
        expect(sidebar.locator("caption")).to_have_text([name for name, _ in SUPPORT_INDEX])
        expect(sidebar.nth(0).locator(".current-model")).to_have_text("Users")
        for name in LIBRARIES:
            expect(page.locator("#nav-sidebar").get_by_text(name, exact=True)).to_have_count(0)

        # Reports → Usage: the support role may read it.
        sidebar.nth(3).get_by_role("link", name="Usage", exact=True).click()
        expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()

    in_browser(read_index)
