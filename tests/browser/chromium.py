"""Headless Chromium (Debian's package) driven by Playwright's Python package.

``scripts/install_browser.sh`` installs Chromium; Playwright's own browser
download is never used (it cannot work on these machines): Playwright starts
the executable found on ``PATH`` (or ``PARLEY_CHROMIUM``). Where Playwright or
Chromium is missing, or Chromium will not start, the browser tests are skipped
and the reason is printed at the end of the run; ``PARLEY_BROWSER_REQUIRED=1``
turns that skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")

# As the machine notes prescribe: without the background-networking flags Chromium keeps
# dialling Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
PAGE_TIMEOUT_MS = 5_000  # each wait for an element or a navigation
INSTALL_HINT = "run scripts/install_browser.sh and `pip install -r requirements-dev.txt`"

skip_reasons: list[str] = []


def chromium_path() -> str | None:
    return os.environ.get("PARLEY_CHROMIUM") or shutil.which("chromium")


def unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return f"the playwright package is not installed ({INSTALL_HINT})"
    if chromium_path() is None:
        return f"no chromium executable on PATH ({INSTALL_HINT})"
    return None


def skip_browser_tests(reason: str) -> None:
    message = f"browser tests skipped: {reason}"
    if os.environ.get("PARLEY_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{message} (PARLEY_BROWSER_REQUIRED=1)", pytrace=False)
    skip_reasons.append(reason)
    pytest.skip(message, allow_module_level=True)


class LaunchFailed(str):
    """Chromium would not start: why."""


def drive(base_url: str, steps: Callable[[Page], T]) -> T | LaunchFailed:
    """Starts Chromium, runs ``steps`` on a fresh page (relative URLs go to ``base_url``), stops it.

    A failing step leaves a screenshot and the HTML of the page behind, named in the error.
    """
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            return LaunchFailed(f"{chromium_path()} would not start: {_launch_error(exc)}")
        try:
            context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            page = context.new_page()
            try:
                return steps(page)
            except Exception as exc:
                exc.add_note(_keep_evidence(page))
                raise
        finally:
            browser.close()


def _launch_error(exc: Exception) -> str:
    """Playwright's first line, and what Chromium said or how it ended (not the whole call log)."""
    lines = [line.strip(" -") for line in str(exc).strip().splitlines()]
    telling = [line for line in lines[1:] if "[err]" in line or "did exit" in line]
    return "; ".join(lines[:1] + telling[-3:])


def _keep_evidence(page: Page) -> str:
    folder = Path(tempfile.mkdtemp(prefix="parley-browser-"))
    try:
        (folder / "page.html").write_text(page.content())
        page.screenshot(path=folder / "page.png", full_page=True)
    except Exception as exc:  # the page may be gone; the failure itself matters more
        return f"(no screenshot kept: {exc})"
    return f"the browser was at {page.url}; its screenshot and HTML are in {folder}"
