"""One heartbeat per worker renews what its running replies hold.

A running reply holds a lease (so the stale sweep knows its worker is
alive) and, for a chat reply, one of its user's concurrency slots; both
expire unless renewed. Rather than a timer per reply, each event loop runs
one task that renews them all, in one statement per kind, every third of
``REPLY_LEASE_SECONDS``.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable

from asgiref.sync import sync_to_async
from django.conf import settings

from core.db.connections import release_connection
from core.loops import PerLoop

logger = logging.getLogger(__name__)


Renew = Callable[[list], None]


class _Heartbeat:
    def __init__(self) -> None:
        self.held: dict[Renew, set[Hashable]] = defaultdict(set)
        self.task: asyncio.Task | None = None


_heartbeats = PerLoop(_Heartbeat)


def keep(renew: Renew, key: Hashable) -> None:
    """Renew ``key`` with ``renew([keys…])`` while it is kept (call in a coroutine)."""
    heartbeat = _heartbeats.get()
    heartbeat.held[renew].add(key)
    if heartbeat.task is None or heartbeat.task.done():
        heartbeat.task = asyncio.get_running_loop().create_task(_beat(heartbeat))


def release(renew: Renew, key: Hashable) -> None:
    _heartbeats.get().held[renew].discard(key)


def _renew_in_thread(renew: Renew, keys: list) -> None:
    try:
        renew(keys)
    finally:
        release_connection()


async def _beat(heartbeat: _Heartbeat) -> None:
    while any(heartbeat.held.values()):
        await asyncio.sleep(settings.REPLY_LEASE_SECONDS / 3)
        for renew, keys in list(heartbeat.held.items()):
            if not keys:
                continue
            try:
                await sync_to_async(_renew_in_thread, thread_sensitive=False)(renew, list(keys))
            except Exception:  # a database or Redis hiccup must not end the replies; the next beat may work
                logger.warning(
                    "Renewing %d lease(s) with %s failed", len(keys), renew.__name__, exc_info=True
                )
