#!/usr/bin/env python
"""Charges per second on one hot wallet, for both locking styles, side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley \\
        .venv/bin/python bench/wallet_contention.py [--callers 32] [--processes 4] [--seconds 10] [--rounds 2]

Each caller loops over what a chat reply does to the wallet: reserve the most
the reply may cost, then settle the real cost (one ``charge`` entry), every
step in its own transaction, all callers on the same wallet. Two styles:

* ``conditional-update``: the code in ``wallets.services`` (one
  ``UPDATE ... WHERE balance >= held + x RETURNING ...``; no row back means
  not enough credit);
* ``select-for-update``: the same operations written the other way (lock the
  wallet row with ``SELECT ... FOR UPDATE``, check in Python, save), kept
  here so the comparison can be re-run.

It runs in a throwaway database (``<name>_bench``, created and dropped by
Django's test-database machinery), never in the one ``DATABASE_URL`` names,
and after each run it checks the invariants: the audit finds nothing, no hold
is left open, and the credits charged equal what the balance lost.

The callers are threads spread over a few processes (``--processes``), as
they would be over an ASGI server's workers. The machine's load average is
printed with the figures: anything else running on it lowers them.
"""

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")

RESERVE = 10  # credits held per reply; the settled cost is 1..RESERVE


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers in all (default 32)")
    parser.add_argument(
        "--processes",
        type=int,
        default=4,
        help="processes the callers are spread over, so that one interpreter's GIL is not all that is "
        "measured (default 4: on 2 CPUs more processes cost more than they bring)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each style, interleaved (default 2)")
    return parser.parse_args()


ARGS = _parse()
# A pooled connection per caller of a process, so the pool is not what they queue on,
# and no more than that, so the processes together stay far below max_connections.
_PER_PROCESS = -(-ARGS.callers // ARGS.processes)
os.environ.setdefault("DATABASE_POOL_MIN", "1")
os.environ.setdefault("DATABASE_POOL_MAX", str(_PER_PROCESS))
os.environ.setdefault("DATABASE_POOL_TIMEOUT", "60")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import F, Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from wallets import services  # noqa: E402
from wallets.errors import InsufficientFunds  # noqa: E402
from wallets.models import Hold, LedgerEntry, Wallet  # noqa: E402
from wallets.selectors import wallets_audit  # noqa: E402

# --- the select-for-update style --------------------------------------------


def reserve_locked(*, user, amount: int, description: str = "") -> Hold:
    with transaction.atomic(durable=True):
        wallet = Wallet.objects.select_for_update(no_key=True).get(user=user)
        if wallet.available < amount:
            raise InsufficientFunds(available=wallet.available, required=amount)
        hold = Hold.objects.create(wallet=wallet, amount=amount, description=description)
        wallet.held += amount
        wallet.save(update_fields=["held", "updated_at"])
    return hold


def settle_locked(*, hold_id, cost: int, description: str) -> Wallet:
    with transaction.atomic():
        hold = Hold.objects.select_for_update(no_key=True).get(pk=hold_id)
        wallet = Wallet.objects.select_for_update(no_key=True).get(pk=hold.wallet_id)
        if hold.status != Hold.Status.OPEN:
            return wallet
        charge = min(cost, hold.amount)
        wallet.balance -= charge
        wallet.held -= hold.amount
        wallet.save(update_fields=["balance", "held", "updated_at"])
        hold.status, hold.charged, hold.closed_at = Hold.Status.SETTLED, charge, timezone.now()
        hold.save(update_fields=["status", "charged", "closed_at"])
        if charge:
            LedgerEntry.objects.create(
                wallet=wallet,
                kind=LedgerEntry.Kind.CHARGE,
                amount=-charge,
                balance_after=wallet.balance,
                description=description,
                hold=hold,
            )
    return wallet


STYLES = {
    "conditional-update": (services.wallet_reserve, services.wallet_settle),
    "select-for-update": (reserve_locked, settle_locked),
}

# --- the run -------------------------------------------------------------------


@dataclass
class Result:
    style: str
    charges: int
    errors: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.charges / self.seconds


def _callers(style: str, login_id: str, threads: int, start, stop, results) -> None:
    """One process's share of the callers: ``threads`` threads, each looping reserve + settle."""
    reserve, settle = STYLES[style]
    user = User.objects.get(login_id=login_id)
    connection.close()  # back to the pool, for the callers
    counts, errors = [0] * threads, [0] * threads

    def caller(index: int) -> None:
        rng = random.Random(index)
        try:
            start.wait()
            while not stop.is_set():
                try:
                    hold = reserve(user=user, amount=RESERVE, description="bench")
                    settle(hold_id=hold.pk, cost=rng.randint(1, RESERVE), description="bench reply")
                    counts[index] += 1
                except Exception as exc:
                    errors[index] += 1
                    print(f"  {style} caller {index}: {exc!r}", file=sys.stderr)
        finally:
            connection.close()

    pool = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((sum(counts), sum(errors)))


def _worker(database_name: str, *args) -> None:
    # A spawned process: point it at the benchmark database before Django connects.
    connection.settings_dict["NAME"] = database_name
    _callers(*args)


def run(style: str, round_no: int) -> Result:
    login_id = f"bench-{style}-{round_no}"
    user = User.objects.create_user(login_id, password=None)
    services.wallet_top_up(user=user, amount=10**12, reason="benchmark float")
    start_balance = Wallet.objects.get(user=user).balance
    connection.close()

    context = multiprocessing.get_context("spawn")
    per_process = [len(range(i, ARGS.callers, ARGS.processes)) for i in range(ARGS.processes)]
    start = context.Barrier(ARGS.callers + 1)
    stop, results = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_worker, args=(connection.settings_dict["NAME"], style, login_id, n, start, stop, results)
        )
        for n in per_process
    ]
    for worker in workers:
        worker.start()
    start.wait(timeout=120)
    started = time.perf_counter()
    time.sleep(ARGS.seconds)
    stop.set()
    totals = [results.get(timeout=120) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()

    charges = sum(count for count, _ in totals)
    _verify(style, user, start_balance, charges)
    return Result(style, charges, sum(errors for _, errors in totals), elapsed)


def _verify(style: str, user, start_balance: int, charges: int) -> None:
    wallet = Wallet.objects.get(user=user)
    charged = -(
        LedgerEntry.objects.filter(wallet=wallet, kind=LedgerEntry.Kind.CHARGE).aggregate(s=Sum("amount"))[
            "s"
        ]
        or 0
    )
    entries = LedgerEntry.objects.filter(wallet=wallet, kind=LedgerEntry.Kind.CHARGE).count()
    problems = [str(m) for m in wallets_audit()]
    if Hold.objects.filter(wallet=wallet, status=Hold.Status.OPEN).exists() or wallet.held:
        problems.append("holds left open")
    if start_balance - wallet.balance != charged:
        problems.append(f"balance fell by {start_balance - wallet.balance}, ledger charged {charged}")
    if entries != charges:
        problems.append(f"{charges} settles counted, {entries} charge entries written")
    if Wallet.objects.filter(pk=wallet.pk, balance__lt=F("held")).exists():
        problems.append("available went negative")
    if problems:
        raise SystemExit(f"{style}: INVARIANTS BROKEN: " + "; ".join(problems))


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: the point is real row locks.")
    test_settings = connection.settings_dict.setdefault("TEST", {})
    test_settings["NAME"] = f"{connection.settings_dict['NAME']}_bench"
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        print(f"load average at the start: {os.getloadavg()[0]:.2f} (other work skews the figures)")
        results: dict[str, list[Result]] = {style: [] for style in STYLES}
        for round_no in range(ARGS.rounds):
            for style in STYLES:
                result = run(style, round_no)
                results[style].append(result)
                print(
                    f"round {round_no + 1} {style:<20} {result.charges:>7} charges "
                    f"in {result.seconds:.1f}s = {result.per_second:7.1f}/s  errors {result.errors}",
                    flush=True,
                )
        print(
            f"\n{ARGS.callers} callers in {ARGS.processes} processes on one wallet, "
            "reserve + settle per charge, PostgreSQL"
        )
        print(f"{'style':<20} {'charges/s (each round)':<28} {'best':>8}")
        for style, runs in results.items():
            each = ", ".join(f"{r.per_second:.0f}" for r in runs)
            print(f"{style:<20} {each:<28} {max(r.per_second for r in runs):>8.0f}")
        print("audit after every run: clean")
        print(f"load average at the end (this machine has {os.cpu_count()} CPUs): {os.getloadavg()[0]:.2f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
