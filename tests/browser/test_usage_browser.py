"""A staff member reads the usage page in a real browser: the chart for seeded spend, then a date range.

Same setup as ``test_admin_browser.py``: pytest-django's ``live_server`` and
Debian's Chromium driven by Playwright, skipped (with the reason printed) where
either is missing. ``PARLEY_SCREENSHOT=docs/usage-admin.png`` writes the page
with the 30-day chart there (the operations guide's picture); otherwise it
goes to ``tmp_path``.
"""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from tests.helpers.admin_pages import admin_login
from tests.helpers.clients import PASSWORD
from tests.helpers.usage_rows import at, reply, request

from .chromium import skip_browser_tests, unavailable_reason

if (_reason := unavailable_reason()) is not None:
    skip_browser_tests(_reason)

from playwright.sync_api import Page, expect  # only once it is known to be installed

from tests.helpers.catalogue import category_make


@pytest.fixture
def spend(make_user, general_category):
    """Three customers spend on three categories over the last 30 days; returns the per-day totals."""
    coding = category_make("coding", name="Coding", order=1, prompt_price=1, completion_price=1)
    writing = category_make("writing", name="Writing", order=2, prompt_price=1, completion_price=1)
    customers = [make_user(login_id) for login_id in ("dana.dev", "erin.writer", "frank.casual")]
    today = timezone.now().date()
    totals: dict[str, int] = {}
    for days_ago in range(30):
        day = today - dt.timedelta(days=days_ago)
        chat, api, prose = 3 + days_ago % 7 * 2, 2 + days_ago % 5 * 3, 1 + days_ago % 4
        reply(customers[0], general_category, chat, at(day, 9))
        request(customers[0], coding, api, at(day, 14))
        reply(customers[1], writing, prose, at(day, 16))
        if days_ago % 3 == 0:
            reply(customers[2], general_category, 4, at(day, 20))
        totals[day.isoformat()] = chat + api + prose + (4 if days_ago % 3 == 0 else 0)
    return totals


def test_staff_opens_usage_from_the_index_and_filters_a_range(in_browser, staff_user, spend, tmp_path):
    today = timezone.now().date()
    week_start, week_end = today - dt.timedelta(days=13), today - dt.timedelta(days=7)
    screenshot = Path(os.environ.get("PARLEY_SCREENSHOT") or tmp_path / "usage-admin.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)

    def read_usage(page: Page) -> None:
        admin_login(page, staff_user.login_id, PASSWORD)
        page.get_by_role("link", name="Usage", exact=True).click()
        expect(page).to_have_url(re.compile(r"/admin/chats/usagerecord/usage/$"))
        expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()

        # Thirty days, each a stacked bar whose total is what was spent that day.
        bars = page.locator("#usage-chart g.bar")
        expect(bars).to_have_count(30)
        for day, credits in spend.items():
            expect(page.locator(f'#usage-chart g.bar[data-day="{day}"]')).to_have_attribute(
                "data-credits", str(credits)
            )
        yesterday = (today - dt.timedelta(days=1)).isoformat()
        segments = page.locator(f'#usage-chart rect.segment[data-day="{yesterday}"]')
        expect(segments).to_have_count(3)
        expect(segments.first).to_be_visible()
        expect(page.locator(".usage-legend li")).to_have_text(["General", "Coding", "Writing"])
        expect(page.locator("#usage-total strong")).to_have_text(str(sum(spend.values())))
        expect(page.locator("#top-spenders tr.spender td:nth-child(2)")).to_have_text(
            ["dana.dev", "erin.writer", "frank.casual"]
        )
        page.screenshot(path=screenshot, full_page=True)

        # A week in the middle: seven bars, the same per-day numbers, the others gone.
        page.get_by_label("From", exact=True).fill(week_start.isoformat())
        page.get_by_label("To", exact=True).fill(week_end.isoformat())
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(rf"start={week_start}&end={week_end}$"))
        expect(bars).to_have_count(7)
        week = [(week_start + dt.timedelta(days=n)).isoformat() for n in range(7)]
        for day in week:
            expect(page.locator(f'#usage-chart g.bar[data-day="{day}"]')).to_have_attribute(
                "data-credits", str(spend[day])
            )
        expect(page.locator(f'#usage-chart g.bar[data-day="{yesterday}"]')).to_have_count(0)
        expect(page.locator("#usage-total strong")).to_have_text(str(sum(spend[day] for day in week)))

        # A range the wrong way round: a message, and the last 30 days again.
        page.get_by_label("From", exact=True).fill(week_end.isoformat())
        page.get_by_label("To", exact=True).fill(week_start.isoformat())
        page.get_by_role("button", name="Filter").click()
        expect(page.locator(".messagelist .error")).to_contain_text("“From” must not be after “To”.")
        expect(bars).to_have_count(30)

    in_browser(read_usage)
    assert screenshot.stat().st_size > 10_000
