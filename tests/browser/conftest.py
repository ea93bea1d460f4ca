from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import pytest

from .chromium import LaunchFailed, drive, skip_browser_tests, skip_reasons

if TYPE_CHECKING:
    from playwright.sync_api import Page

T = TypeVar("T")
RUN_TIMEOUT_S = 120  # one whole browser session; each step has its own 5 s limit


def pytest_terminal_summary(terminalreporter):
    for reason in dict.fromkeys(skip_reasons):
        terminalreporter.write_line(f"browser tests skipped: {reason}", yellow=True, bold=True)


@pytest.fixture
def in_browser(live_server) -> Callable[[Callable[[Page], T]], T]:
    """``in_browser(steps)`` runs ``steps(page)`` in a fresh headless Chromium against the live server.

    Playwright's sync API leaves an asyncio loop marked as running on the
    thread that uses it, and Django then refuses ORM calls on that thread
    (``SynchronousOnlyOperation``). So the browser lives on a thread of its own
    for the one call; fixtures and database assertions stay on the test's
    thread, and whatever ``steps`` raises is raised again there.
    """

    def run(steps: Callable[[Page], T]) -> T:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playwright")
        try:
            outcome = pool.submit(drive, live_server.url, steps).result(timeout=RUN_TIMEOUT_S)
        finally:
            pool.shutdown(wait=False)
        if isinstance(outcome, LaunchFailed):
            skip_browser_tests(outcome)
        return outcome

    return run
