#!/usr/bin/env python
"""The API reads' own cost, in-process: what api_overhead's ratio is made of.

    DATABASE_URL=postgres://... .venv/bin/python bench/api_inprocess.py [--requests 500]

``bench/api_overhead.py`` compares the API reads with a bare Django view under
uvicorn and wrk; there every endpoint also pays Django's request handling
under ASGI. This script calls the same three URLs through Django's test
client (the WSGI handler, the same middleware, no server, no threads), one
request at a time, and prints the CPU time per request: what each endpoint
costs on its own. Then the queries inside them, each through the ORM and as
the same SQL through a plain cursor: what hand-written SQL would save.

One user with 20 sessions, as in api_overhead, in the database of
``DATABASE_URL`` (created if missing, migrated; each run adds its own user).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _common import machine, prepare_database, resolve_database_url, server_env

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 20
PATHS = ["/bench/bare", "/api/wallet/", "/api/sessions/"]


def cpu_ms(call, repeat: int) -> float:
    """CPU milliseconds per call, after a warm-up."""
    for _ in range(min(repeat, 50)):
        call()
    started = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - started) / repeat * 1000


def run(args: argparse.Namespace) -> None:
    database_url = resolve_database_url(args.database_url)
    env = server_env(database_url, "http://127.0.0.1:9/v1", DJANGO_SETTINGS_MODULE="bench.settings_bench")
    env["ALLOWED_HOSTS"] = "testserver"
    prepare_database(database_url, env)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from chats import selectors, services

    user = User.objects.create_user(f"inprocess-{time.time_ns()}", password=None)
    for index in range(SESSIONS):
        services.session_create(user=user, category="general", title=f"Session {index}")
    client = Client(headers={"Authorization": f"Bearer {AccessToken.for_user(user)}"})
    for path in PATHS:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    print("machine:", json.dumps(machine()))
    print(f"database: {database_url.split('@')[-1]}; {args.requests} requests each, one at a time")
    print("CPU per request through Django's test client (ms):")
    costs = {path: cpu_ms(lambda path=path: client.get(path), args.requests) for path in PATHS}
    for path, cost in costs.items():
        print(f"  GET {path:<16} {cost:6.2f}   own (minus the bare view) {cost - costs['/bench/bare']:6.2f}")

    page = selectors.session_rows_for_user(user=user).order_by("-updated_at")[: SESSIONS + 1]
    queries = {
        "the JWT user lookup": (
            lambda: User.objects.get(pk=user.pk),
            User.objects.filter(pk=user.pk).query.sql_with_params(),
        ),
        f"the session page ({SESSIONS} rows)": (lambda: list(page.all()), page.query.sql_with_params()),
    }
    print("CPU per query (ms):          ORM   same SQL, plain cursor")
    for name, (orm, (sql, params)) in queries.items():

        def plain(sql=sql, params=params):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        print(f"  {name:<24} {cpu_ms(orm, args.requests):6.2f}   {cpu_ms(plain, args.requests):6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--database-url", help="default: $DATABASE_URL, else a temporary SQLite file")
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
