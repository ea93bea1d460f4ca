#!/usr/bin/env python
"""Where a streamed reply's time and CPU go, in one process: the figures behind stream_overhead.

    DATABASE_URL=postgres://... .venv/bin/python bench/reply_breakdown.py [--replies 200]

``bench/stream_overhead.py`` measures what the API adds to a streamed reply
from outside; this script says what that is made of. It runs the project's
ASGI application in its own process under uvloop (no HTTP server: the ASGI
messages are exchanged in memory), against the fake OpenAI upstream in a
subprocess (50 chunks, 2 ms apart, as in stream_overhead), and sends
``--replies`` messages one after the other, five per session. It prints:

* the time to the first body byte (the ``start`` event) and to the end;
* the process's CPU per reply, split into the event loop's thread, the thread
  that authenticates and runs ``reply_begin`` (``chats.views._begin``), the
  one that runs ``reply_finish``, and the rest (Django's per-request threads
  for sync middleware);
* ``reply_begin`` alone: its SQL statements and its time;
* the floor under the event loop's share: the same 50-chunk stream read with
  a bare ``httpx2`` client (the transport the ``openai`` SDK uses), nothing
  else, in the same loop.

The two wrapped functions are timed with ``time.thread_time()`` around them;
nothing else is changed. PostgreSQL is what stream_overhead measures on; on
SQLite the script runs but the database part differs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

from _common import FakeUpstream, machine, prepare_database, resolve_database_url, server_env

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = {"chunks": [f" w{i}" for i in range(50)], "first_chunk_delay": 0.002, "chunk_delay": 0.002}
MESSAGE = "Hello, how are you today?"


class ThreadCpu:
    """Thread CPU time spent inside one function, summed over its calls."""

    def __init__(self, function):
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        started = time.thread_time()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - started


async def _asgi(application, method: str, path: str, token: str, body: dict | None = None):
    """One request through the ASGI application: (seconds to the first body byte, total, body)."""
    payload = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    received = False
    finished = asyncio.Event()

    async def receive():
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    started, first, chunks = time.perf_counter(), None, []

    async def send(message):
        nonlocal first
        if message["type"] == "http.response.body" and message.get("body"):
            first = first or time.perf_counter()
            chunks.append(message["body"])

    await application(scope, receive, send)
    finished.set()
    ended = time.perf_counter()
    return (first or ended) - started, ended - started, b"".join(chunks)


async def _httpx_floor(base_url: str, streams: int) -> float:
    """CPU seconds per 50-chunk stream read with a bare httpx2 client."""
    import httpx2

    body = {"model": "m", "messages": [{"role": "user", "content": MESSAGE}], "stream": True}
    async with httpx2.AsyncClient(base_url=base_url) as client:

        async def one():
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for _ in response.aiter_lines():
                    pass

        for _ in range(5):
            await one()
        started = time.process_time()
        for _ in range(streams):
            await one()
        return (time.process_time() - started) / streams


def _seed(count: int) -> tuple[str, list[str]]:
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from chats import services

    user = User.objects.create_user(f"breakdown-{time.time_ns()}", password=None)
    sessions = [str(services.session_create(user=user, category="general").id) for _ in range(count)]
    return str(AccessToken.for_user(user)), sessions


def _reply_begin_alone(token_user_session: tuple, replies: int) -> tuple[int, float, float]:
    """Statements, wall and CPU seconds of ``reply_begin`` called directly, per call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chats import services

    user, sessions = token_user_session
    with CaptureQueriesContext(connection) as queries:
        services.reply_begin(user=user, session_id=sessions[0], content=MESSAGE)
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(replies):
        services.reply_begin(user=user, session_id=sessions[1 + index // 5], content=MESSAGE)
    return len(queries), (time.perf_counter() - wall) / replies, (time.process_time() - cpu) / replies


def run(args: argparse.Namespace) -> None:
    database_url = resolve_database_url(args.database_url)
    with FakeUpstream(SCENARIO) as fake:
        env = server_env(database_url, fake.base_url, ALLOWED_HOSTS="127.0.0.1")
        prepare_database(database_url, env)
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        import django
        import uvloop

        django.setup()
        import chats.replies
        import chats.views
        from config.asgi import application

        begin = chats.views._begin = ThreadCpu(chats.views._begin)
        finish = chats.replies._finish_and_release_connection = ThreadCpu(
            chats.replies._finish_and_release_connection
        )
        token, sessions = _seed(args.replies // 5 + 2)

        async def replies() -> dict:
            warm_up = f"/api/sessions/{sessions[0]}/messages/"
            for _ in range(5):  # the client pool, Django's caches
                await _asgi(application, "POST", warm_up, token, {"content": MESSAGE})
            begin.seconds = finish.seconds = 0.0
            firsts, totals = [], []
            process, loop_thread = time.process_time(), time.thread_time()
            for index in range(args.replies):
                path = f"/api/sessions/{sessions[1 + index // 5]}/messages/"
                first, total, body = await _asgi(application, "POST", path, token, {"content": MESSAGE})
                if b"event: done" not in body:
                    raise RuntimeError(f"reply {index} did not finish: {body[-300:]!r}")
                firsts.append(first)
                totals.append(total)
            per = 1000 / args.replies
            cpu = {
                "process": (time.process_time() - process) * per,
                "event loop thread": (time.thread_time() - loop_thread) * per,
                "auth + reply_begin thread": begin.seconds * per,
                "reply_finish thread": finish.seconds * per,
            }
            cpu["other threads"] = 2 * cpu["process"] - sum(cpu.values())
            floor = await _httpx_floor(fake.base_url, max(args.replies // 4, 20))
            return {"first": firsts, "total": totals, "cpu": cpu, "floor": floor * 1000}

        figures = uvloop.run(replies())

        from accounts.models import User

        user = User.objects.get(chat_sessions__id=sessions[0])
        statements, begin_wall, begin_cpu = _reply_begin_alone((user, sessions), min(args.replies, 100))

    print("machine:", json.dumps(machine()))
    where = database_url.split("@")[-1]
    print(f"database: {where}; {args.replies} replies of 50 chunks, 2 ms apart, one at a time")
    quantiles = statistics.quantiles
    for name in ("first", "total"):
        values = sorted(1000 * value for value in figures[name])
        p50, p99 = statistics.median(values), quantiles(values, n=100)[98]
        label = "to the start event" if name == "first" else "to the end       "
        print(f"  {label}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print("CPU per reply (ms):")
    for name, value in figures["cpu"].items():
        print(f"  {name:<26} {value:7.2f}")
    print(f"  the same stream read by bare httpx2 (the event loop's floor): {figures['floor']:.2f}")
    print(
        f"reply_begin alone: {statements} SQL statements (with BEGIN and COMMIT), "
        f"{1000 * begin_wall:.2f} ms wall, {1000 * begin_cpu:.2f} ms CPU per call"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else a temporary SQLite file")
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
