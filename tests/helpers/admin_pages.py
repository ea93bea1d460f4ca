"""Driving the admin in a real browser (Playwright)."""

import re

from playwright.sync_api import Page, expect


def admin_login(page: Page, login_id: str, password: str) -> None:
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Login id").fill(login_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
