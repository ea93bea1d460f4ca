"""Django's ASGI handler, and ASGI middleware in front of it.

:class:`ASGIHandler` is Django's, lending each request a thread that earlier
requests used rather than starting one, and running Django's middleware with
their hooks on the event loop. :class:`RequestBodyLimit` caps
request bodies, and :class:`Lifespan` speaks the lifespan protocol.

A cap on bodies:

Django's ASGI handler reads the whole body into a temporary file before any
view or setting can refuse it, and a body sent ``Transfer-Encoding:
chunked`` has no Content-Length, which DRF reads as "no body at all". Here a
body is refused with 413 as soon as it is known to be too large (from its
Content-Length, or while it streams in), and a chunked body that fits is
handed to Django with the Content-Length it turned out to have.
"""

import asyncio
import contextlib
import contextvars
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ASGIHandler(DjangoASGIHandler):
    """Django's handler, with two changes that pay: borrowed threads, and middleware hooks on the loop.

    Django runs a request's sync code (the ``request_started`` receivers, a
    sync view, its response's ``render()`` and ``close()``) on one thread of
    the request's own, through asgiref's ``ThreadSensitiveContext``, which
    starts a thread for every request, and another to join it when the
    request ends; starting a thread blocks the event loop until the thread
    runs. Here a request borrows a one-thread executor that an earlier request
    gave back: the same guarantee (one thread for all of the request's sync
    code), no thread started. Up to ``IDLE_KEPT`` wait idle for the next
    requests; past that, a returned executor's thread ends.

    And Django's middleware, listed in ``MIDDLEWARE`` by Django's paths, runs
    here as the subclasses of ``core.middleware.ON_THE_LOOP``, whose hooks stay
    on the event loop (``load_middleware``).

    Each measured against Django's own (docs/benchmarks.md, "Framework
    overrides, side by side"): with Django's ``__call__``, ``GET
    /api/sessions/`` served 0.82 times the requests per second and a chat
    reply's time to first token at 32 clients (p50) was 1.46 times as long;
    with Django's middleware, 0.83 and 1.45. What they rely on is checked at
    start-up (``core.checks``) and by tests that fail when the Django code
    they copy or call changes (``core/tests/test_request_threads.py``,
    ``core/tests/test_middleware.py``).
    """

    IDLE_KEPT = 64

    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    def load_middleware(self, is_async: bool = False) -> None:
        """Django's, with the middleware of ``core.middleware.ON_THE_LOOP`` in place of Django's own.

        ``MIDDLEWARE`` lists Django's middleware by Django's paths, which its
        deploy checks look for; this chain runs, in their place, the subclasses
        whose hooks stay on the event loop (``core.middleware.HooksOnTheLoop``).
        Django 5.2's ``BaseHandler.load_middleware`` reads ``settings.MIDDLEWARE``
        once, in its loop over the paths: the list is swapped for that call only.
        """
        from core.middleware import ON_THE_LOOP

        listed = settings.MIDDLEWARE
        settings.MIDDLEWARE = [ON_THE_LOOP.get(path, path) for path in listed]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = listed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Copied from Django 5.2's ASGIHandler.__call__ (django/core/handlers/asgi.py), with one
        # change: the ThreadSensitiveContext is given an executor, borrowed and given back.
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # Django refuses it, as it would
            return
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < self.IDLE_KEPT:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)  # its thread ends once its last call has


def outliving_the_request() -> contextvars.Context:
    """The running context, minus the request's thread: for a task that may end after the request.

    A request's thread is lent to it for its duration (:class:`ASGIHandler`):
    once the request has given it back, asgiref refuses to send the task's sync
    code there, so such a task's sync code runs on asgiref's shared thread
    instead (``asyncio.create_task(coro, context=outliving_the_request())``).
    """
    context = contextvars.copy_context()
    context.run(SyncToAsync.thread_sensitive_context.set, None)
    return context


class RequestBodyLimit:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        headers = scope["headers"]
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                await _refuse(send, limit, path=scope["path"])
                return
            await self.app(scope, receive, send)
            return
        if not any(name == b"transfer-encoding" for name, _ in headers):
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(send, limit, path=scope["path"])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sized = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(sized, replay, send)


async def _refuse(send: Send, limit: int, *, path: str) -> None:
    from core.responses import compact_json
    from core.views import error_body_for  # the URLconf's module: loaded once Django is set up

    error = error_body_for(path, "payload_too_large", "The request body is too large.", {"max_bytes": limit})
    body = compact_json(error).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Lifespan:
    """The ASGI lifespan protocol, which Django does not speak: a hook for the worker's shutdown.

    On ``lifespan.startup`` it also chains a handler on SIGTERM, so that
    ``on_signal`` learns of the shutdown as soon as it is asked for, before
    the server has finished closing its connections; ``on_shutdown`` runs
    once the server has stopped taking requests.
    """

    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        on_startup: Callable[[], None],
        on_signal: Callable[[], None],
        on_shutdown: Callable[[], Awaitable[None]],
    ) -> None:
        self.app = app
        self.on_startup = on_startup
        self.on_signal = on_signal
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.on_startup()
                self._chain_sigterm()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _chain_sigterm(self) -> None:
        previous = signal.getsignal(signal.SIGTERM)
        loop = asyncio.get_running_loop()

        def asked_to_stop(signum, frame) -> None:
            loop.call_soon_threadsafe(self.on_signal)
            if callable(previous):
                previous(signum, frame)

        # Not the main thread (an embedded server): no signal, the shutdown hook still runs.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, asked_to_stop)
