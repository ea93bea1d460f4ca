"""Django's ASGI handler, with each request's thread taken from a pool instead of started anew.

Under ASGI, Django runs a request's sync code (middleware hooks, sync views,
``sync_to_async`` calls) on a thread of the request's own, so that its
database connection stays on one thread. Stock Django starts that thread for
every request and joins it at the end (asgiref's ``ThreadSensitiveContext``).
That costs the event loop a thread start and a join per request, and gives
every request a cold ``DatabaseWrapper`` whose per-connection caches are
built again. Here a request still gets a thread to itself, for its whole
life, but the thread is taken from a pool and given back afterwards, as a
threaded WSGI server does. Measured in-process: 0.6-1.2 ms less CPU per
request (docs/benchmarks.md).

A request's database connection does not outlive it either way: Django closes
it when the request finishes (``close_old_connections``), on that same thread.
"""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

# Threads kept for later requests; beyond this, a thread ends with its request.
IDLE_THREADS = 64


class RequestThreads:
    """Single-thread executors, one per request in flight, reused in LIFO order (the warmest first)."""

    def __init__(self, keep_idle: int = IDLE_THREADS) -> None:
        self.keep_idle = keep_idle
        self._idle: deque[ThreadPoolExecutor] = deque()  # append and pop are atomic

    def take(self) -> ThreadPoolExecutor:
        try:
            return self._idle.pop()
        except IndexError:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        # An executor may still be finishing work its request shielded from
        # cancellation (a reply being settled): the next request to take it
        # queues behind that work, on the same thread.
        if len(self._idle) < self.keep_idle:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    @property
    def idle(self) -> int:
        return len(self._idle)


class PooledThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # as Django's handler
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)


def get_asgi_application() -> PooledThreadASGIHandler:
    """``django.core.asgi.get_asgi_application``, with the pooled handler."""
    import django

    django.setup(set_prefix=False)
    return PooledThreadASGIHandler()
