"""A thread's database connection, handed back when the thread's work is done.

Work run in a thread of its own (a settlement, a heartbeat, a view's sync
part) opens a connection that nothing else would close: Django closes
connections at a request's end only, and the thread may outlive it.
"""

from django.db import connection


def release_connection() -> None:
    """Hand this thread's database connection back (to the pool, if there is one).

    Not inside an atomic block: there the connection is someone's open
    transaction (a test's, typically), not ours to end.
    """
    if not connection.in_atomic_block:
        connection.close()
