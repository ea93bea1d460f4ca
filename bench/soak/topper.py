"""The soak's top-up process: the same idempotency key sent by several threads at once."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from _common import ROOT  # bench/ is on sys.path


def run_topper(args: argparse.Namespace) -> None:
    """Entry point of the top-up process: rounds of concurrent replays until stdin closes.

    One JSON line per attempt goes to ``--out``: key, amount, the entry each
    attempt got back (all attempts of a key must get the same one), or the error.
    """
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from wallets.models import Wallet
    from wallets.services import wallet_top_up

    user = get_user_model().objects.get_by_natural_key(args.login)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    out = open(args.out, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    lock = threading.Lock()

    def attempt(key: str, amount: int, barrier: threading.Barrier) -> None:
        record: dict[str, Any] = {"key": key, "amount": amount, "via": "service"}
        try:
            barrier.wait(timeout=10)
            entry = wallet_top_up(user=user, amount=amount, reason="race soak top-up", idempotency_key=key)
            record["entry"] = entry.pk
        except Exception as exc:  # every failure is a finding, reported by the orchestrator
            record["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()  # back to the pool
        with lock:
            out.write(json.dumps(record) + "\n")

    round_number = 0
    while not stop.wait(args.topup_interval):
        round_number += 1
        available = Wallet.objects.filter(user=user).values_list("balance", "held").get()
        connection.close()
        low = available[0] - available[1] < args.low_water
        amount = args.refill if low else 1 + round_number % 5
        key = f"soak-{args.run}-{round_number}"
        barrier = threading.Barrier(args.replays)
        threads = [threading.Thread(target=attempt, args=(key, amount, barrier)) for _ in range(args.replays)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    out.close()
