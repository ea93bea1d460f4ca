#!/usr/bin/env python
"""Peak memory (RSS) of ``manage.py usage_report`` over a million ledger charges.

    .venv/bin/python bench/usage_report_memory.py [--entries 1000000] [--users 1000] [--days 30]

A throwaway PostgreSQL database, ``parley_usage_bench`` (created here, dropped at the end), is
migrated, given ``--users`` users with wallets, then ``--entries`` ``charge`` entries spread over
the users and ``--days`` UTC days by one ``INSERT … SELECT generate_series(…)`` (the ORM refuses
to write ledger entries any other way than one by one through the services; raw rows are fine in
a database that is dropped afterwards). Each measured command runs in its own process, and its
peak RSS is read from the kernel (``os.wait4``'s ``ru_maxrss``):

- the yardstick: a process that does ``django.setup()`` and nothing else, and a second one,
  ``usage_report`` over a day with no charges (what the command costs before any row: the
  management machinery, the database driver);
- ``usage_report --group-by day`` and ``--group-by user``, CSV written to a file;
- for scale, the naive report: the million ``(login, amount)`` rows read into a Python list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _common import PYTHON, drop_database, machine, reset_database, server_env  # noqa: E402

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/parley_usage_bench"
FIRST_DAY = "2026-01-01"

SEED_USERS = """
from accounts.models import User
from wallets.models import Wallet
users = User.objects.bulk_create(
    [User(login_id=f"bench-{i:04d}", login_key=f"bench-{i:04d}", email="") for i in range({users})]
)
Wallet.objects.bulk_create([Wallet(user=user, balance=0) for user in users])
"""

SEED_CHARGES = """
INSERT INTO wallets_ledgerentry
    (wallet_id, kind, amount, balance_after, description, key_scope, created_at)
SELECT w.id, 'charge', -(1 + g %% 50), 0, '', '',
       %(first)s::timestamptz + (g %% %(days)s) * interval '1 day' + (g %% 86400) * interval '1 second'
FROM generate_series(0, %(entries)s - 1) AS g
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM wallets_wallet) AS w
  ON w.n = g %% %(users)s
"""

YARDSTICK = "import django; django.setup()"
NAIVE = (
    "import django; django.setup()\n"
    "from wallets.models import LedgerEntry\n"
    "rows = list(LedgerEntry.objects.filter(kind='charge').values_list('wallet__user__login_id', 'amount'))\n"
    "print(len(rows))\n"
)


def peak_rss(command: list[str], env: dict[str, str], stdout) -> tuple[float, float]:
    """The command's peak RSS in MiB and its wall time in seconds; it must succeed."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{command} exited {process.returncode}: {process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-naive", action="store_true", help="skip the list-of-rows comparison")
    args = parser.parse_args()

    import psycopg

    env = server_env(DATABASE_URL)
    reset_database(DATABASE_URL)
    try:
        started = time.monotonic()
        subprocess.run([PYTHON, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
        seed = SEED_USERS.replace("{users}", str(args.users))
        subprocess.run([PYTHON, "manage.py", "shell", "-c", seed], cwd=ROOT, env=env, check=True)
        with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(
                SEED_CHARGES,
                {
                    "first": f"{FIRST_DAY} 00:00:00+00",
                    "days": args.days,
                    "entries": args.entries,
                    "users": args.users,
                },
            )
            conn.execute("ANALYZE")
            (count,) = conn.execute(
                "SELECT count(*) FROM wallets_ledgerentry WHERE kind = 'charge'"
            ).fetchone()
        print(
            f"seeded {count:,} charges over {args.users} users and {args.days} days"
            f" in {time.monotonic() - started:.1f} s"
        )

        last_day = (dt.date.fromisoformat(FIRST_DAY) + dt.timedelta(days=args.days - 1)).isoformat()
        measured = [("yardstick: django.setup() alone", [PYTHON, "-c", YARDSTICK], None)]
        command = [PYTHON, "manage.py", "usage_report", "--from", "2000-01-01", "--to", "2000-01-01"]
        measured.append(("usage_report over a day with no charges", [*command, "--format", "csv"], "empty"))
        for group in ("day", "user"):
            command = [PYTHON, "manage.py", "usage_report", "--from", FIRST_DAY, "--to", last_day]
            measured.append(
                (
                    f"usage_report --group-by {group}",
                    [*command, "--group-by", group, "--format", "csv"],
                    group,
                )
            )
        if not args.no_naive:
            measured.append((f"naive: {count:,} (login, amount) rows in a list", [PYTHON, "-c", NAIVE], None))

        print(
            {
                key: value
                for key, value in machine().items()
                if key in {"nproc", "python", "load_average", "commit"}
            }
        )
        print(f"{'what':48} {'rows out':>9} {'peak RSS':>12} {'wall':>8}")
        results = {}
        for name, command, group in measured:
            with tempfile.TemporaryFile("w+") as out:
                rss, wall = peak_rss(command, env, out)
                out.seek(0)
                lines = sum(1 for _ in out) - (1 if group else 0)
            results[name] = rss
            print(f"{name:48} {lines:>9,} {rss:>8.1f} MiB {wall:>6.1f} s")
        yardstick = results[measured[0][0]]
        for name, rss in list(results.items())[1:]:
            print(f"{name}: {rss - yardstick:+.1f} MiB over the yardstick")
    finally:
        drop_database(DATABASE_URL)


if __name__ == "__main__":
    main()
