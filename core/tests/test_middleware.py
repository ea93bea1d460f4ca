"""Django's middleware on the event loop: what it does, and the Django code it copies and relies on."""

import hashlib
import inspect
import threading

import pytest
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from core.asgi import ASGIHandler
from core.middleware import ON_THE_LOOP, HooksOnTheLoop

# The Django code that core.middleware copies (MiddlewareMixin.__acall__, and its __init__ and
# __call__, which send an async chain to __acall__), the middleware whose hooks it runs on the
# event loop, and the code with which core.asgi.ASGIHandler builds its chain of them, as in Django
# 5.2.19: the SHA-256 of each one's source. When one fails, Django changed it: read the new code,
# check that core.middleware and core.asgi still follow it (the hooks do no I/O unless
# response_needs_thread says so; load_middleware reads settings.MIDDLEWARE once, when called, and
# leaves a coroutine process_view as it is), update their "Copied from" notes, then the hash.
REVIEWED = {
    "django.utils.deprecation.MiddlewareMixin": "719062a110865f71",
    "django.middleware.security.SecurityMiddleware": "7c0daafdd127de47",
    "django.contrib.sessions.middleware.SessionMiddleware": "81dfc7bdab259429",
    "django.middleware.common.CommonMiddleware": "0a9411bc1510a38c",
    "django.middleware.csrf.CsrfViewMiddleware": "461e7a1110dea43f",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "016788fb7214c6ed",
    "django.contrib.messages.middleware.MessageMiddleware": "68bbf99a11d6e87e",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "b005c3dcd16801e1",
    # What response_needs_thread reads: a session's `accessed` (set by any read or write of it),
    # the messages' `used` and `added_new` (without which `update` stores nothing).
    "django.contrib.sessions.backends.base.SessionBase.__init__": "f78360c7a64901af",
    "django.contrib.sessions.backends.base.SessionBase._get_session": "35c0dd5f559a138a",
    "django.contrib.sessions.backends.base.SessionBase.is_empty": "5b67db5dbc02d775",
    "django.contrib.messages.storage.base.BaseStorage.__init__": "cc6e74277a3ea532",
    "django.contrib.messages.storage.base.BaseStorage.update": "3db9589128339b47",
    # How core.asgi.ASGIHandler.load_middleware builds its chain.
    "django.core.handlers.base.BaseHandler.load_middleware": "a1fb7ee5f8586195",
    "django.core.handlers.base.BaseHandler.adapt_method_mode": "1f6383b647ac2959",
}


def source_hash(path: str) -> str:
    module, _, name = path.rpartition(".")
    try:
        obj = import_string(path)
    except ImportError:  # a method: its class, then the attribute
        obj = getattr(import_string(module), name)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


@pytest.mark.parametrize("path", REVIEWED)
def test_the_django_code_the_middleware_on_the_loop_follows_has_not_changed(path):
    assert source_hash(path) == REVIEWED[path], (
        f"{path} changed since Django 5.2.19: review core/middleware.py"
    )


@pytest.mark.parametrize(("stock", "ours"), ON_THE_LOOP.items())
def test_each_middleware_on_the_loop_subclasses_a_reviewed_django_middleware(stock, ours):
    cls = import_string(ours)
    assert stock in REVIEWED
    assert cls.__mro__[1:] == (HooksOnTheLoop, *import_string(stock).__mro__)


def test_the_asgi_handler_runs_the_middleware_on_the_loop_and_leaves_the_setting_as_it_was(settings):
    listed = list(settings.MIDDLEWARE)

    handler = ASGIHandler()

    assert listed == settings.MIDDLEWARE
    chain, found = handler._middleware_chain, []
    while chain is not None:  # each layer: Django's exception wrapper around a middleware
        layer = inspect.getclosurevars(chain).nonlocals.get("get_response", chain)
        found.append(type(layer))
        chain = getattr(layer, "get_response", None)
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in found}
    assert set(ON_THE_LOOP.values()) <= names
    assert not set(ON_THE_LOOP) & names


class Recorder(HooksOnTheLoop, MiddlewareMixin):
    def __init__(self, get_response, needs_thread: bool = False) -> None:
        super().__init__(get_response)
        self.needs_thread = needs_thread
        self.threads: dict[str, int] = {}

    def process_request(self, request):
        self.threads["request"] = threading.get_ident()

    def process_response(self, request, response):
        self.threads["response"] = threading.get_ident()
        return response

    def response_needs_thread(self, request, response) -> bool:
        return self.needs_thread


async def answer(request):
    return HttpResponse("ok")


async def test_in_an_async_chain_the_hooks_run_on_the_event_loop():
    middleware = Recorder(answer)

    response = await middleware(HttpRequest())

    assert response.content == b"ok"
    assert middleware.threads == {"request": threading.get_ident(), "response": threading.get_ident()}


async def test_a_response_that_needs_a_thread_has_its_hook_run_in_one():
    middleware = Recorder(answer, needs_thread=True)

    await middleware(HttpRequest())

    assert middleware.threads["request"] == threading.get_ident()
    assert middleware.threads["response"] != threading.get_ident()


def test_in_a_sync_chain_nothing_changes():
    middleware = Recorder(lambda request: HttpResponse("ok"))

    response = middleware(HttpRequest())

    assert response.content == b"ok"
    assert set(middleware.threads.values()) == {threading.get_ident()}
