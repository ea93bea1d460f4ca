"""System checks: what core's overrides of Django's machinery rely on, asserted at start-up.

Two overrides are kept, each because it measured at least 10 % on a figure a user sees
(docs/benchmarks.md, "Framework overrides, side by side"):

- ``core.asgi.ASGIHandler`` lends each request a one-thread executor through asgiref's
  ``ThreadSensitiveContext(executor=...)``: :func:`check_request_threads`;
- under ASGI it runs Django's middleware as the subclasses of ``core.middleware.ON_THE_LOOP``,
  whose hooks stay on the event loop: safe while those hooks do no I/O, true with Django's own
  session engines and message storages and with the CSRF token in a cookie; and
  ``MIDDLEWARE`` must list Django's classes by Django's paths, since a subclass listed there
  would hide Django's deploy checks (:func:`check_middleware_on_the_loop`).

Tests in ``core/tests/test_checks.py`` make each check fire; those that pin the Django code the
overrides copy or call are in ``core/tests/test_request_threads.py`` and
``core/tests/test_middleware.py``.
"""

import inspect

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.checks import Error, Tags, register
from django.utils.module_loading import import_string

# Django's own session engines and message storages: their constructors (the hooks'
# ``process_request``) read nothing, and they write only when the session or the messages were
# used, which is when ``HooksOnTheLoop.response_needs_thread`` sends the response's hook to a thread.
DJANGO_SESSION_ENGINES = {
    f"django.contrib.sessions.backends.{name}"
    for name in ("db", "cache", "cached_db", "file", "signed_cookies")
}
DJANGO_MESSAGE_STORAGES = {
    "django.contrib.messages.storage.cookie.CookieStorage",
    "django.contrib.messages.storage.fallback.FallbackStorage",
    "django.contrib.messages.storage.session.SessionStorage",
}

# Middleware whose deploy checks look for this exact path in MIDDLEWARE (security.W001, W004-W006,
# W008, W021, W022, E023, E024; W011, W012, W014, W015; W003, W016; W002, W019): listed as a
# subclass, Django would not check its settings.
CHECKED_BY_PATH = (
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


@register(Tags.compatibility)
def check_request_threads(app_configs, **kwargs) -> list[Error]:
    """``core.asgi.ASGIHandler`` gives each request's ``ThreadSensitiveContext`` an executor."""
    if "executor" in inspect.signature(ThreadSensitiveContext).parameters:
        return []
    return [
        Error(
            "asgiref's ThreadSensitiveContext takes no executor, which core.asgi.ASGIHandler lends "
            "each request.",
            hint="Install an asgiref whose ThreadSensitiveContext takes executor= (3.13.0 does).",
            obj="core.asgi.ASGIHandler",
            id="core.E001",
        )
    ]


@register(Tags.compatibility, Tags.security)
def check_middleware_on_the_loop(app_configs, **kwargs) -> list[Error]:
    """Django's middleware listed by its paths; the hooks run on the event loop do no I/O there."""
    errors = []
    for stock_path in CHECKED_BY_PATH:
        stock = import_string(stock_path)
        for path in settings.MIDDLEWARE:
            cls = import_string(path)
            if isinstance(cls, type) and cls is not stock and issubclass(cls, stock):
                errors.append(
                    Error(
                        f"MIDDLEWARE lists {path}, a subclass of {stock_path}, whose deploy checks "
                        "look for its own path: they would not run.",
                        hint=f"List {stock_path} itself (under ASGI, core.asgi.ASGIHandler runs "
                        "its subclass of core.middleware.ON_THE_LOOP).",
                        obj=path,
                        id="core.E002",
                    )
                )
    listed = set(settings.MIDDLEWARE)
    if "django.contrib.sessions.middleware.SessionMiddleware" in listed and (
        settings.SESSION_ENGINE not in DJANGO_SESSION_ENGINES
    ):
        errors.append(
            Error(
                f"SESSION_ENGINE {settings.SESSION_ENGINE!r} is not one of Django's, and "
                "core.middleware.SessionMiddleware opens the session on the event loop.",
                hint="Use one of Django's session engines.",
                obj="core.middleware.SessionMiddleware",
                id="core.E003",
            )
        )
    if "django.contrib.messages.middleware.MessageMiddleware" in listed and (
        settings.MESSAGE_STORAGE not in DJANGO_MESSAGE_STORAGES
    ):
        errors.append(
            Error(
                f"MESSAGE_STORAGE {settings.MESSAGE_STORAGE!r} is not one of Django's, and "
                "core.middleware.MessageMiddleware opens the storage on the event loop.",
                hint="Use one of Django's message storages.",
                obj="core.middleware.MessageMiddleware",
                id="core.E004",
            )
        )
    if "django.middleware.csrf.CsrfViewMiddleware" in listed and settings.CSRF_USE_SESSIONS:
        errors.append(
            Error(
                "CSRF_USE_SESSIONS is on, and core.middleware.CsrfViewMiddleware reads the CSRF "
                "token on the event loop: from the session, that is a database read there.",
                hint="Keep the CSRF token in its cookie (CSRF_USE_SESSIONS = False).",
                obj="core.middleware.CsrfViewMiddleware",
                id="core.E005",
            )
        )
    return errors
