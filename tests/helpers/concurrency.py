"""Concurrency tests: PostgreSQL for real row locks, and callers released together in threads."""

import threading

import pytest
from django.db import connection

requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (set DATABASE_URL=postgres://...) for real row locks and concurrency",
)


def in_parallel(call, callers: int = 8) -> list:
    """Run ``call(i)`` in ``callers`` threads released together; results or exceptions, in order.

    Each thread hands its database connection back when done, as a request's does.
    """

    barrier = threading.Barrier(callers)
    outcomes: list = [None] * callers

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call(index)
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes
