#!/usr/bin/env python
"""The hand-written primary-key reads of the request path, side by side with the ORM's queryset.

    .venv/bin/python bench/plain_reads.py [--calls 500] [--runs 3] [--database-url postgres://...]

Four reads run on every streamed request, each written as one plain statement whose row is
built as the ORM builds it (``core.db.rows``): the token's user (``user_by_id``), a key with its
user (``api_key_by_secret``), the session with its category (``session_get``) and the category
a ``/v1/`` model names (``model_requested``). For each, the CPU time (``time.process_time``) of
``--calls`` calls against the same calls through the ORM's equivalent queryset, in one process,
alternating, on a throwaway PostgreSQL database (dropped and created here). Printed per read:
microseconds per call, plain and ORM, and ORM ÷ plain, median (range) of ``--runs`` runs; the
tests (``tests/test_rows.py`` and the selectors' tests) show both build the same instances.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _common import drop_database, machine, median_range, reset_database  # noqa: E402

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/parley_bench_reads"


def setup_django(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        SECRET_KEY="bench-secret-key-not-for-production-0123456789abcdef",
        DEBUG="false",
        REDIS_URL="",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def pairs() -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Each read as (plain, ORM), over rows made here."""
    from model_bakery import baker

    from accounts.models import ApiKey, User
    from accounts.selectors import api_key_by_secret, user_by_id
    from accounts.services import api_key_create
    from chats.conversations.selectors import session_get
    from chats.models import Category, ChatSession
    from chats.v1.selectors import model_requested

    user = baker.make(User, login_id="reader", login_key="reader")
    key, secret = api_key_create(user=user, name="bench")
    category = Category.objects.get(slug="general")
    session = baker.make(ChatSession, user=user, category=category)
    return {
        "user_by_id": (
            lambda: user_by_id(user.pk),
            lambda: User.objects.filter(pk=user.pk).first(),
        ),
        "api_key_by_secret": (
            lambda: api_key_by_secret(secret),
            lambda: ApiKey.objects.select_related("user").filter(digest=key.digest).first(),
        ),
        "session_get": (
            lambda: session_get(user=user, session_id=session.pk),
            lambda: ChatSession.objects.select_related("category").get(pk=session.pk, user_id=user.pk),
        ),
        "model_requested": (
            lambda: model_requested(name="general"),
            lambda: Category.objects.select_related("model").filter(slug="general", is_active=True).first(),
        ),
    }


def cpu_per_call(read: Callable[[], object], calls: int) -> float:
    """Microseconds of this process's CPU per call (the database's own time is not in it)."""
    started = time.process_time()
    for _ in range(calls):
        read()
    return (time.process_time() - started) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE, help="dropped and created afresh")
    args = parser.parse_args()

    print("machine:", machine())
    reset_database(args.database_url)
    try:
        setup_django(args.database_url)
        reads = pairs()
        figures: dict[str, dict[str, list[float]]] = {
            name: {"plain": [], "orm": [], "ratio": []} for name in reads
        }
        for _ in range(args.runs):
            for name, (plain, orm) in reads.items():
                plain(), orm()  # warm: the first call of each compiles and caches what it can
                mine, theirs = cpu_per_call(plain, args.calls), cpu_per_call(orm, args.calls)
                figures[name]["plain"].append(mine)
                figures[name]["orm"].append(theirs)
                figures[name]["ratio"].append(theirs / mine)
        from django.db import connection

        connection.close()
    finally:
        drop_database(args.database_url)

    print(f"\n{args.calls} calls per read and run, {args.runs} runs; µs of CPU per call, median (range)")
    print(f"{'read':<20} {'plain':>22} {'ORM':>22} {'ORM ÷ plain':>20}")
    for name, figure in figures.items():
        plain, orm, ratio = (median_range(figure[k]) for k in ("plain", "orm", "ratio"))
        print(f"{name:<20} {plain:>22} {orm:>22} {ratio:>20}")
    total = sum(statistics.median(f["orm"]) - statistics.median(f["plain"]) for f in figures.values())
    print(f"\nCPU a request would add through the ORM, all four reads: {total:.0f} µs (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
