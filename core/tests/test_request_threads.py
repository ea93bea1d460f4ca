"""What runs where under ASGI: requests reuse threads, and middleware hooks stay on the event loop."""

import inspect
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.signals import request_started
from django.utils.deprecation import MiddlewareMixin
from rest_framework.response import Response
from rest_framework_simplejwt.tokens import AccessToken

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


def test_django_keeps_its_database_hooks_on_request_started():
    """Read in a fresh process, as a worker starts (the test client takes one off and puts it back)."""
    code = (
        "import django; django.setup(); from django.core.signals import request_started; "
        "print(sorted(r.__name__ for r in request_started._live_receivers(None)[0]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false"}
    env.setdefault("SECRET_KEY", "x" * 50)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['close_old_connections', 'reset_queries']"


def test_a_sync_api_view_costs_four_thread_hops(live_asgi_url, user, hops):
    token = str(AccessToken.for_user(user))
    with httpx.Client(base_url=live_asgi_url, timeout=10) as http:
        http.get("/healthz")
        hops.clear()
        assert http.get("/api/wallet/", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # The health check's own close may still be on its way: only the API response's counts. The
    # response is closed once its body is sent, so the client may read it before that hop is made.
    def ours() -> list:
        return [hop for hop in hops if hop.__name__ != "close" or isinstance(hop.__self__, Response)]

    deadline = time.monotonic() + 5
    while not any(hop.__name__ == "close" for hop in ours()) and time.monotonic() < deadline:
        time.sleep(0.01)
    # What Django sends to the request's thread. With Django's own middleware, thirteen more: one
    # per hook (security, session, common and messages: two each; CSRF: three; the others: one).
    assert [getattr(hop, "__qualname__", type(hop).__name__) for hop in ours()] == [
        "Signal.asend.<locals>.sync_send",  # request_started: close_old_connections, reset_queries
        "WalletViewSet",
        "SimpleTemplateResponse.render",
        "HttpResponseBase.close",
    ]


# Django 5.2's ASGIHandler.__call__, which core.asgi.ASGIHandler.__call__ copies, lending the
# ThreadSensitiveContext an executor. When this fails, Django's has changed: bring core.asgi's
# copy in line with it (and its "Copied from" note), then update this copy.
DJANGO_ASGI_HANDLER_CALL = """\
    async def __call__(self, scope, receive, send):
        \"\"\"
        Async entrypoint - parses the request and hands off to get_response.
        \"\"\"
        # Serve only HTTP connections.
        # FIXME: Allow to override this.
        if scope["type"] != "http":
            raise ValueError(
                "Django can only handle ASGI/HTTP connections, not %s." % scope["type"]
            )

        async with ThreadSensitiveContext():
            await self.handle(scope, receive, send)
"""


def test_djangos_asgi_handler_call_is_the_one_core_asgi_copies():
    assert inspect.getsource(DjangoASGIHandler.__call__) == DJANGO_ASGI_HANDLER_CALL
