#!/usr/bin/env python
"""Peak memory of ``GET /api/export/`` (streamed) against building the same document whole.

    .venv/bin/python bench/export_memory.py [--database-url postgres://postgres@127.0.0.1:5432/parley_bench_export]

Unlike the other scripts this one imports Django: what it measures is the Python heap of one
process (``tracemalloc``'s peak, reset before each measurement). The database (PostgreSQL,
dropped and created afresh) holds one user with ``--sessions`` sessions of ``--per-session``
messages (100 sessions of 100 = 10,000 by default, ~400 characters each), and another user with a tenth
of that, to show the export's peak does not grow with the account. Measured:

- the export: ``GET /api/export/`` through Django's test client (every middleware, the view,
  ``chats.conversations.exports``), its pieces read and dropped as a socket would;
- the yardstick, the stock way to answer with the same document: ``SessionExportSerializer``
  over the sessions with their messages prefetched, rendered by DRF's ``JSONRenderer``;
- the bare minimum of building it whole: the 10,000 messages' representations in one list,
  ``json.dumps``'d.

Not counted by ``tracemalloc``: memory outside Python's allocator (libpq's result buffers, which
``.iterator()`` keeps at one fetch of 500 rows).
"""

from __future__ import annotations

import argparse
import os
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import drop_database, machine, reset_database  # noqa: E402

CONTENT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 5)[:400]


def mib(size: int) -> str:
    return f"{size / 2**20:.2f} MiB"


def peak(build) -> tuple[int, object]:
    """``build()``'s peak of Python memory above what was allocated before it."""
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    result = build()
    _, top = tracemalloc.get_traced_memory()
    return top - before, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/parley_bench_export",
        help="dropped first",
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--per-session", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args()

    reset_database(args.database_url)
    os.environ.update(
        DATABASE_URL=args.database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="bench-export-memory-not-a-secret-0123456789abcdef",
        DEBUG="false",  # DEBUG keeps every query in memory
        LLM_PROVIDER="echo",
        REDIS_URL="",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.renderers import JSONRenderer
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from chats.conversations.selectors import sessions_for_export
    from chats.conversations.serializers import MessageSerializer, SessionExportSerializer
    from chats.models import Category, ChatSession, Message

    try:
        call_command("migrate", verbosity=0)
        general = Category.objects.get(slug="general")

        def seed(login: str, sessions: int) -> User:
            user = User.objects.create_user(login_id=login, password="bench-password-123")
            made = ChatSession.objects.bulk_create(
                [ChatSession(user=user, category=general, title=f"chat {i}") for i in range(sessions)]
            )
            Message.objects.bulk_create(
                [
                    Message(session=s, role=("user", "assistant")[i % 2], content=f"{i} {CONTENT}")
                    for s in made
                    for i in range(args.per_session)
                ],
                batch_size=2000,
            )
            return user

        big = seed("big", args.sessions)
        small = seed("small", max(1, args.sessions // 10))

        def export(user) -> int:
            client = Client(HTTP_HOST="localhost")
            token = RefreshToken.for_user(user).access_token
            response = client.get("/api/export/", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200 and response.streaming
            return sum(len(piece) for piece in response.streaming_content)

        def stock(user) -> int:
            sessions = sessions_for_export(user=user).prefetch_related("messages")
            return len(JSONRenderer().render(SessionExportSerializer(sessions, many=True).data))

        def dumps_list(user) -> int:
            import json

            messages = Message.objects.filter(session__user=user).order_by("session_id", "created_at")
            return len(json.dumps([dict(MessageSerializer(m).data) for m in messages], default=str))

        tracemalloc.start()
        export(small)  # warm-up: imports, URL resolution, the first connection
        rows = []
        for name, build, user in [
            ("export, small account", export, small),
            ("export, big account", export, big),
            ("stock DRF serializer + JSONRenderer, big", stock, big),
            ("json.dumps of the messages' list, big", dumps_list, big),
        ]:
            size, length = peak(lambda build=build, user=user: build(user))
            count = Message.objects.filter(session__user=user).count()
            rows.append((name, count, length, size))
        tracemalloc.stop()

        print({key: value for key, value in machine().items() if key in {"python", "load_average", "commit"}})
        print(f"{'what':44} {'messages':>9} {'document':>12} {'peak Python memory':>20}")
        for name, count, length, size in rows:
            print(f"{name:44} {count:>9,} {mib(length):>12} {mib(size):>20}")
        export_big, stock_big, dumps_big = rows[1][3], rows[2][3], rows[3][3]
        print(f"export ÷ stock serializer: {export_big / stock_big:.3f}")
        print(f"export ÷ json.dumps of the list: {export_big / dumps_big:.3f}")
        print(f"export, big ÷ small account: {export_big / rows[0][3]:.2f}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.database_url)


if __name__ == "__main__":
    main()
