"""What runs where under ASGI: requests reuse threads, and middleware hooks stay on the event loop."""

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from asgiref.sync import SyncToAsync
from django.core.signals import request_started
from django.utils.deprecation import MiddlewareMixin
from rest_framework.response import Response
from rest_framework_simplejwt.tokens import AccessToken

from core.apps import request_start_without_database_hooks
from tests.helpers.clients import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plain_http_cookies(settings):
    """The loopback server speaks http: cookies marked Secure would not come back."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def hops(monkeypatch):
    """Every ``sync_to_async`` call made while the test runs: the callables sent to a thread."""
    sent: list = []
    call = SyncToAsync.__call__

    async def recording(self, *args, **kwargs):
        sent.append(self.func)
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", recording)
    return sent


def middleware_hooks(sent: list) -> list[str]:
    owners = [getattr(func, "__self__", None) for func in sent]
    return [type(owner).__name__ for owner in owners if isinstance(owner, MiddlewareMixin)]


def test_requests_run_their_sync_code_on_reused_threads_not_new_ones(live_asgi_url, monkeypatch):
    threads: list[int] = []

    def started(**kwargs) -> None:
        threads.append(threading.get_ident())

    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        http.get("/api/wallet/")  # the first requests start their threads
        http.get("/api/wallet/")
        starts = []
        start = threading.Thread.start
        monkeypatch.setattr(threading.Thread, "start", lambda self: starts.append(self) or start(self))
        request_started.connect(started)
        try:
            for _ in range(10):
                assert http.get("/api/wallet/").status_code == 401
        finally:
            request_started.disconnect(started)
    # Django's own handler starts a thread for each request, and another to join it: 20 here. A
    # request may still be closing when the next one comes, which then takes a second thread.
    assert len(starts) <= 2
    assert len(threads) == 10
    assert len(set(threads)) <= 3


def test_an_api_request_sends_no_middleware_hook_to_a_thread(live_asgi_url, user, general_category, hops):
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        login = http.post("/auth/login", json={"login_id": user.login_id, "password": PASSWORD})
        access = login.json()["access"]
        sessions = http.get("/api/sessions/", headers={"Authorization": f"Bearer {access}"})
        created = http.post(
            "/api/sessions/", json={"category": "general"}, headers={"Authorization": f"Bearer {access}"}
        )
    assert (login.status_code, sessions.status_code, created.status_code) == (200, 200, 201)
    assert middleware_hooks(hops) == []
    assert hops, "the sync views themselves still run in a thread"


def test_the_admin_still_saves_its_session_and_messages_from_a_thread(
    live_asgi_url, staff_user, plain_http_cookies, hops
):
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        form = http.get("/admin/login/")
        token = http.cookies["csrftoken"]
        logged_in = http.post(
            "/admin/login/",
            data={"username": staff_user.login_id, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{live_asgi_url}/admin/login/"},
        )
        index = http.get("/admin/")
    assert form.status_code == 200
    assert logged_in.status_code == 302, logged_in.text[:300]
    assert "sessionid" in http.cookies
    assert index.status_code == 200  # the session saved at login is read back
    assert "SessionMiddleware" in middleware_hooks(hops)


def test_a_form_post_without_its_csrf_token_is_refused(live_asgi_url):
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        refused = http.post("/admin/login/", data={"username": "x", "password": "y"})
    assert refused.status_code == 403


def test_django_sends_request_started_without_a_thread_hop():
    """No sync receiver is left on it in a worker (the test client puts one back after each request,
    so this is read in a fresh process)."""
    code = (
        "import django; django.setup(); from django.core.signals import request_started; "
        "print(sum(1 for _ in request_started._live_receivers(None)[0]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false"}
    env.setdefault("SECRET_KEY", "x" * 50)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


def test_a_sync_api_view_costs_two_thread_hops_the_view_rendering_its_response_and_the_close(
    live_asgi_url, user, hops
):
    request_start_without_database_hooks()
    token = str(AccessToken.for_user(user))
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        http.get("/healthz")
        hops.clear()
        assert http.get("/api/wallet/", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # Stock Django under ASGI: the same, one for the rendering, one for request_started, and two
    # per middleware hook.
    # The health check's own close may still be on its way: only the API response's counts. The
    # response is closed once its body is sent, so the client may read it before that hop is made.
    def ours() -> list:
        return [hop for hop in hops if hop.__name__ != "close" or isinstance(hop.__self__, Response)]

    deadline = time.monotonic() + 5
    while len(ours()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [hop.__name__ for hop in ours()] == ["WalletViewSet", "close"]
