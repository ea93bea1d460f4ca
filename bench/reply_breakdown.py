#!/usr/bin/env python
"""Where one worker's CPU goes while it serves streamed replies: a sampled breakdown.

    .venv/bin/python bench/reply_breakdown.py [--path chat|v1] [--clients 8] [--replies 400]

Parley under ``uvicorn config.asgi:application`` (one worker, PostgreSQL,
DEBUG off) against the fake upstream (20 chunks, 2 ms apart), as in
``bench/peer_litellm.py``; ``py-spy`` samples the worker's thread that
holds the GIL (``--gil``: Python code running, not threads waiting) while
``--clients`` clients send ``--replies`` messages on one path. Each
sample is charged twice:

- to a *stage*: the most specific frame of ours (or Django's) that names what
  the request is doing (the middleware, DRF's checks, the reservation, the
  stream, the settlement…), failing that, the
  machinery it is in (thread hops, the event loop);
- to a *kind* of code: the innermost frame's package (the ORM, the
  PostgreSQL driver, asyncio, uvicorn, the HTTP client…).

The shares are of the worker's busy samples; with the CPU per reply (from
``/proc``) they give milliseconds per reply per stage. Samples are noisy;
the shares, not the milliseconds, carry from one machine to another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    FakeUpstream,
    Server,
    bearer,
    cpu_seconds,
    create_session,
    machine,
    manage,
    reset_database,
    seed_tokens,
    server_env,
)
from _sse import sse_events

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_breakdown"
QUESTION = "Could you explain, briefly, how a streamed reply gets from the model to my screen?"
PY_SPY = Path(sys.executable).with_name("py-spy")

# (stage, a substring of a frame): the first rule that any frame of the sample matches wins, so
# the more specific come first (the reservation runs inside the endpoint, which runs inside Django).
STAGES = [
    ("admit: DRF checks (auth, throttle, parser)", "perform_authentication"),
    ("admit: DRF checks (auth, throttle, parser)", "check_throttles"),
    ("admit: DRF checks (auth, throttle, parser)", "check_permissions"),
    ("admit: DRF checks (auth, throttle, parser)", "initialize_request"),
    ("admit: DRF checks (auth, throttle, parser)", "authenticate ("),
    ("reservation (reply_begin / completion_begin)", "reply_begin"),
    ("reservation (reply_begin / completion_begin)", "completion_begin"),
    ("reservation (reply_begin / completion_begin)", "in_a_slot"),
    ("reservation (reply_begin / completion_begin)", "MessageInputSerializer"),
    ("settlement (reply_finish / completion_finish)", "reply_finish"),
    ("settlement (reply_finish / completion_finish)", "completion_finish"),
    ("settlement (reply_finish / completion_finish)", "run_shielded"),
    ("heartbeat and slots", "keepalive.py"),
    ("heartbeat and slots", "reply_slot"),
    ("new sessions (POST /api/sessions/, one per 5 messages)", "session_create"),
    ("upstream: request, reading chunks", "openai_provider.py"),
    ("upstream: request, reading chunks", "openai/_base_client"),
    ("reader: log to SSE frames", "replies/sse.py"),
    ("reader: log to SSE frames", "replies/event_log.py"),
    ("/v1/ rendering", "v1/views.py"),
    ("/v1/ rendering", "v1/wire.py"),
    ("reply task: outcomes to log", "replies/runner.py"),
    ("reply task: outcomes to log", "replies/outcomes.py"),
    ("reply task: outcomes to log", "replies/payloads.py"),
    ("response to the socket (uvicorn, h11/httptools)", "uvicorn/protocols"),
    ("Django: middleware", "django/utils/deprecation"),
    ("Django: middleware", "django/middleware"),
    ("Django: middleware", "/middleware.py"),
    ("Django: request, signals, URL resolve, response", "django/"),
]
# Then, for a sample in none of those: what it is busy with.
STAGES_ELSE = [
    ("thread hops: starting threads, handing work over (asgiref)", "asgiref/"),
    ("thread hops: starting threads, handing work over (asgiref)", "concurrent/futures/thread.py"),
    ("thread hops: starting threads, handing work over (asgiref)", "threading.py"),
    ("event loop (uvloop, asyncio)", "asyncio/"),
    ("event loop (uvloop, asyncio)", "uvloop"),
]

KINDS = [
    ("PostgreSQL driver (psycopg)", "psycopg"),
    ("Django ORM (SQL compiler, models)", "django/db"),
    ("DRF", "rest_framework"),
    ("Django (other)", "django/"),
    ("JWT", "jwt/"),
    ("HTTP client (httpx, httpcore, anyio)", "httpx"),
    ("HTTP client (httpx, httpcore, anyio)", "httpcore"),
    ("HTTP client (httpx, httpcore, anyio)", "anyio"),
    ("openai SDK", "openai/"),
    ("JSON", "json/"),
    ("uvicorn, h11, httptools", "uvicorn"),
    ("uvicorn, h11, httptools", "h11"),
    ("asgiref (thread hops)", "asgiref"),
    ("threads (futures, queue, threading)", "concurrent/futures"),
    ("threads (futures, queue, threading)", "threading.py"),
    ("threads (futures, queue, threading)", "queue.py"),
    ("asyncio", "asyncio/"),
    ("Parley", "/chats/"),
    ("Parley", "/core/"),
    ("Parley", "/wallets/"),
    ("Parley", "/accounts/"),
]


def classify(frames: list[str], rules: list[tuple[str, str]]) -> str:
    """The first rule that a frame matches (rules in order, each tried on every frame)."""
    for name, marker in rules:
        if any(marker in frame for frame in frames):
            return name
    return "other"


def innermost(frames: list[str], rules: list[tuple[str, str]]) -> str:
    """The rule matching the innermost frame that any rule matches."""
    for frame in reversed(frames):
        for name, marker in rules:
            if marker in frame:
                return name
    return "other"


def breakdown(raw: Path) -> tuple[Counter, Counter, int]:
    """Samples per stage and per kind, from py-spy's raw (collapsed) output; and the total."""
    stages, kinds, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        stage = classify(frames, STAGES)
        if stage == "other":
            stage = innermost(frames, STAGES_ELSE)
        stages[stage] += int(count)
        kinds[innermost(frames, KINDS)] += int(count)
    return stages, kinds, total


async def drive(url: str, path: str, tokens: list[str], keys: list[str], replies: int) -> int:
    """``replies`` messages from ``len(tokens)`` clients at once; the number answered whole."""
    done = 0
    per_client = replies // len(tokens)

    async def client(token: str, key: str) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            session = ""
            for number in range(per_client):
                if path == "v1":
                    body = {
                        "model": "general",
                        "messages": [{"role": "user", "content": QUESTION}],
                        "stream": True,
                    }
                    request = http.stream("POST", "/v1/chat/completions", json=body, headers=bearer(key))
                else:
                    if number % 5 == 0:
                        session = await create_session(http, token)
                    headers = {**bearer(token), "Accept": "text/event-stream"}
                    url_path, body = f"/api/sessions/{session}/messages/", {"content": QUESTION}
                    request = http.stream("POST", url_path, json=body, headers=headers)
                async with request as response:
                    last = None
                    async for name, data in sse_events(response):
                        last = data if data == b"[DONE]" else name
                done += last in ("done", b"[DONE]")

    await asyncio.gather(*(client(token, key) for token, key in zip(tokens, keys, strict=True)))
    return done


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--path", choices=("chat", "v1"), default="chat")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--replies", type=int, default=400)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    print("machine:", json.dumps(machine()))
    workdir = Path(tempfile.mkdtemp(prefix="parley-breakdown-"))
    raw = args.raw or workdir / "stacks.txt"
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeUpstream([f" t{i}" for i in range(20)], chunk_delay=0.002))
        env = server_env(args.database_url, fake.base_url)
        reset_database(args.database_url)
        manage(env, "migrate", "--noinput", "-v", "0")
        tokens = seed_tokens(env, args.clients, f"breakdown-{time.strftime('%H%M%S')}")
        server = stack.enter_context(Server(env, log=workdir / "server.log"))
        keys = [
            httpx.post(f"{server.url}/api/keys/", json={"name": "b"}, headers=bearer(t)).json()["secret"]
            for t in tokens
        ]
        asyncio.run(drive(server.url, args.path, tokens, keys, 4 * args.clients))  # warm-up
        spy = subprocess.Popen(
            [
                *(str(PY_SPY), "record", "--pid", str(server.pid), "--rate", str(args.rate), "--gil"),
                *("--nonblocking", "--format", "raw", "--output", str(raw)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        before = cpu_seconds(server.pid)
        answered = asyncio.run(drive(server.url, args.path, tokens, keys, args.replies))
        cpu_ms = (cpu_seconds(server.pid) - before) * 1000 / max(answered, 1)
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    stages, kinds, total = breakdown(raw)
    print(f"\n{args.path}: {answered} replies, {args.clients} clients; worker CPU {cpu_ms:.2f} ms per reply")
    for title, counter in (("stage", stages), ("kind of code (innermost frame)", kinds)):
        print(f"\n{'by ' + title:52} {'share':>7} {'ms/reply':>9}")
        for name, count in counter.most_common():
            print(f"  {name:50} {count / total:7.1%} {cpu_ms * count / total:9.2f}")
    print(f"\nstacks in {raw}")
    return 0 if answered == args.replies // args.clients * args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
