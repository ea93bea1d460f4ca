"""Middleware of our own, and Django's own, made to run on the event loop."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin
from whitenoise.middleware import WhiteNoiseMiddleware

from core import metrics
from core.views import API_PREFIXES, bad_request, page_not_found, server_error


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to sit in an async middleware chain.

    WhiteNoise's middleware is sync-only, so under ASGI Django would run every
    request, the streamed replies included, through a thread hop around it.
    Looking a path up in WhiteNoise's table is a dict lookup; only serving an
    actual static file (or, with ``DEBUG``, searching the disk) goes to a
    thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=None) -> None:
        if settings is None:
            super().__init__(get_response)
        else:
            super().__init__(get_response, settings=settings)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)


class APIErrorPagesMiddleware:
    """Django's HTML error pages become the JSON error shape under ``/api/`` and ``/auth/``.

    With ``DEBUG`` off, the project's ``handler404``/``handler500``/``handler400`` (in
    :mod:`core.views`) already answer JSON there. With ``DEBUG`` on, Django bypasses them and
    renders its technical pages (a URL that resolves nowhere, an exception in a plain view),
    which an API client cannot read: this turns those into the same JSON as the handlers.
    It sits outside ``CommonMiddleware``, whose slash redirect API routes never meet: they take
    both spellings (:mod:`core.routing`).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return self.as_json(request, self.get_response(request))

    async def __acall__(self, request):
        return self.as_json(request, await self.get_response(request))

    def process_exception(self, request, exception):
        """Remember a view's exception (say, a body over the limit) for the 400 handler's choice."""
        request.view_exception = exception

    @staticmethod
    def as_json(request, response):
        if not request.path.startswith(API_PREFIXES):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if response.status_code == 404:
            return page_not_found(request, None)
        if response.status_code == 500:
            return server_error(request)
        if response.status_code == 400:
            return bad_request(request, getattr(request, "view_exception", None))
        return response


class HooksOnTheLoop:
    """A Django middleware whose hooks run on the event loop rather than in a thread.

    Under ASGI, Django's ``MiddlewareMixin`` sends each ``process_request``
    and ``process_response`` to a thread (``sync_to_async``), because a hook
    might do I/O: two thread hops per middleware and request, streamed
    replies included. The hooks of the middleware below only read headers and
    set attributes; those that may touch the database say when
    (``response_needs_thread``), and only then go to a thread. In a sync
    chain (WSGI, the test client) nothing changes.

    ``MIDDLEWARE`` lists Django's own classes, by the paths that Django's
    deploy checks look for; ``core.asgi.ASGIHandler`` builds its chain with
    these subclasses in their place (``ON_THE_LOOP``). Against Django's own
    middleware, measured (docs/benchmarks.md, "Framework overrides, side by
    side"), Django's made ``GET /api/sessions/`` serve 0.83 times the
    requests per second, and a chat reply's time to first token at 32
    clients (p50) 1.45 times as long. What this relies on is checked at
    start-up (``core.checks.check_middleware_on_the_loop``) and by tests that
    fail when the Django code it copies or calls changes
    (``core/tests/test_middleware.py``).
    """

    # Copied from Django 5.2's MiddlewareMixin.__acall__ (django/utils/deprecation.py), with the
    # hooks called on the event loop unless response_needs_thread says otherwise.
    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if not hasattr(self, "process_response"):
            return response
        if self.response_needs_thread(request, response):
            return await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
        return self.process_response(request, response)

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False


class SecurityMiddleware(HooksOnTheLoop, security.SecurityMiddleware):
    pass


class CommonMiddleware(HooksOnTheLoop, common.CommonMiddleware):
    pass


class XFrameOptionsMiddleware(HooksOnTheLoop, clickjacking.XFrameOptionsMiddleware):
    pass


class AuthenticationMiddleware(HooksOnTheLoop, auth.AuthenticationMiddleware):
    """Sets ``request.user`` lazily: the user is read from the database only when used."""


class SessionMiddleware(HooksOnTheLoop, sessions.SessionMiddleware):
    """The session is read lazily; a request that used it (the admin) saves it from a thread."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return request.session.accessed or settings.SESSION_SAVE_EVERY_REQUEST


class MessageMiddleware(HooksOnTheLoop, messages.MessageMiddleware):
    """Messages added or read (the admin's) are stored in the session, from a thread."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(HooksOnTheLoop, csrf.CsrfViewMiddleware):
    """The token is in a cookie (not the session); a form posted to a view it guards is read in a thread.

    Django adapts ``process_view`` to the chain once, when it loads the
    middleware: in an async chain it gets a coroutine, which checks exempt
    views (every API view) and safe methods on the loop, where Django 5.2's
    ``process_view`` reads neither the body nor the session.
    """

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        if self.async_mode:
            self.process_view = self._process_view_on_the_loop

    async def _process_view_on_the_loop(self, request, callback, callback_args, callback_kwargs):
        check = super().process_view
        if getattr(callback, "csrf_exempt", False) or request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return check(request, callback, callback_args, callback_kwargs)
        return await sync_to_async(check, thread_sensitive=True)(
            request, callback, callback_args, callback_kwargs
        )


# What core.asgi.ASGIHandler runs in place of each of Django's middleware that MIDDLEWARE lists.
ON_THE_LOOP = {
    "django.middleware.security.SecurityMiddleware": "core.middleware.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware": "core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware": "core.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware": "core.middleware.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "core.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware": "core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "core.middleware.XFrameOptionsMiddleware",
}


class RequestMetricsMiddleware(HooksOnTheLoop, MiddlewareMixin):
    """Counts each answered request by route pattern (``api/sessions/<uuid:pk>/``, not its URL),
    method and status, for ``/metrics`` (:mod:`core.metrics`). Outermost, so that it sees the
    status every other layer settled on; its hook only counts, so it runs on the loop."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None else "unmatched"
        metrics.REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response
