"""Small helpers for ``scripts/smoke_prod.sh``, run with the project's Python (no Django imported).

    smoke_helpers.py free-ports N             N free TCP ports on 127.0.0.1, one a line
    smoke_helpers.py db-reset URL NAME        drop (forcing out sessions) and create database NAME
    smoke_helpers.py db-drop URL NAME         drop database NAME if it exists
    smoke_helpers.py redis-flush URL          FLUSHDB on the Redis database of URL
    smoke_helpers.py wait-http URL SECONDS    until URL answers 200 (exit 1 on timeout)
    smoke_helpers.py get PATH < file.json     print one value: PATH like ``user.login_id`` or ``results.0.id``
    smoke_helpers.py sse REPLY < stream.txt   check a reply's server-sent events; print the done event's JSON

Every failure exits non-zero with a message on stderr, so the shell script (``set -e``) stops there.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit


def die(message: str) -> None:
    print(f"smoke: {message}", file=sys.stderr)
    sys.exit(1)


def free_ports(count: str) -> None:
    sockets = []
    for _ in range(int(count)):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    for sock in sockets:  # all bound at once, so the ports differ
        print(sock.getsockname()[1])
        sock.close()


def _admin_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), autocommit=True)


def _check_name(name: str) -> str:
    if not name.replace("_", "").isalnum():
        die(f"refusing database name {name!r}")
    return name


def db_drop(url: str, name: str) -> None:
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')


def db_reset(url: str, name: str) -> None:
    with _admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def wait_http(url: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            die(f"{url} did not answer 200 within {seconds} s")
        time.sleep(0.1)


def get(path: str) -> None:
    raw = sys.stdin.read()
    try:
        value = json.loads(raw)
    except ValueError:
        die(f"not JSON: {raw[:300]!r}")
    for part in path.split(".") if path else []:
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            die(f"no {path!r} in {raw[:500]}")
    print(json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else value)


def sse(reply: str) -> None:
    """A streamed reply: ``start``, ``delta``s that spell ``reply``, then ``done``; nothing else."""
    events = []
    for block in sys.stdin.read().split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        try:
            events.append((name, json.loads("\n".join(data))))
        except ValueError:
            die(f"event {name!r} carries no JSON: {block!r}")
    names = [name for name, _ in events]
    if len(events) < 3 or names[0] != "start" or names[-1] != "done" or set(names[1:-1]) != {"delta"}:
        die(f"expected start, delta..., done; got {names}")
    start, done = events[0][1], events[-1][1]
    text = "".join(data["content"] for _, data in events[1:-1])
    if text != reply:
        die(f"the deltas spell {text!r}, not {reply!r}")
    message = done["message"]
    if message["id"] != start["assistant_message_id"]:
        die(f"done is for message {message['id']}, start announced {start['assistant_message_id']}")
    if message["status"] != "complete" or message["content"] != reply:
        die(f"done message is {message['status']!r} with {message['content']!r}")
    if start["user_message"]["role"] != "user":
        die(f"start carries {start['user_message']!r}")
    if done["cost"] != message["cost"] or done["cost"] < 1:
        die(f"done cost {done['cost']} vs message cost {message['cost']}")
    print(json.dumps({**done, "delta_count": len(events) - 2}))


COMMANDS = {
    "free-ports": free_ports,
    "db-reset": db_reset,
    "db-drop": db_drop,
    "redis-flush": redis_flush,
    "wait-http": wait_http,
    "get": get,
    "sse": sse,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        die(f"usage: {sys.argv[0]} {{{','.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
