"""Each request's sync code on a thread of its own, taken from a pool and given back."""

import asyncio
import json
import threading

import pytest
from django.db import connection

from conftest import requires_postgres
from core.handlers import PooledThreadASGIHandler, RequestThreads
from core.tests import urls_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = "core.tests.urls_threads"
    for met in urls_threads.MET.values():
        met.clear()
    return PooledThreadASGIHandler()


async def get(handler, path: str) -> dict:
    """One GET through the handler, in memory; the JSON body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    done = asyncio.Event()
    messages = []

    async def receive():
        if not messages:
            messages.append("sent")
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    body = []

    async def send(message):
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await handler(scope, receive, send)
    done.set()
    return json.loads(b"".join(body))


async def test_the_next_request_reuses_the_thread_of_the_last(handler):
    first = await get(handler, "/where")
    second = await get(handler, "/where")

    assert first["thread"] == second["thread"] != threading.get_ident()
    assert handler.threads.idle == 1


async def test_requests_in_flight_at_once_run_on_threads_of_their_own(handler):
    a, b = await asyncio.gather(get(handler, "/meet/a/b"), get(handler, "/meet/b/a"))

    assert a["met"] and b["met"]  # on one thread, the first would have waited 5 s in vain
    assert a["thread"] != b["thread"]
    assert handler.threads.idle == 2


@requires_postgres  # Django never closes an in-memory SQLite database (the tests' own)
async def test_a_requests_database_connection_is_closed_when_it_ends(handler):
    await get(handler, "/query")

    (executor,) = handler.threads._idle
    assert executor.submit(lambda: connection.connection is None).result(timeout=5)


def test_threads_beyond_the_idle_limit_end_with_their_request():
    threads = RequestThreads(keep_idle=1)
    kept, extra = threads.take(), threads.take()
    kept.submit(lambda: None).result()
    worker = extra.submit(threading.current_thread).result()

    threads.give_back(kept)
    threads.give_back(extra)

    assert threads.idle == 1
    assert threads.take() is kept
    worker.join(timeout=5)
    assert not worker.is_alive()


async def test_only_http_is_served(handler):
    with pytest.raises(ValueError, match="websocket"):
        await handler({"type": "websocket"}, None, None)
