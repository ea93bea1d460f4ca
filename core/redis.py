"""Redis, which the workers share: every client Parley opens and every key it writes.

One place to read what lives in the shared Redis (``REDIS_URL``), so that an
operator can tell each key's owner and lifetime:

- ``parley:reply:<reply id>:events``: a stream, a reply's event log, for
  readers resuming on any worker (``chats.replies.event_log``); expires
  ``REPLY_EVENTS_TTL`` seconds after the reply's end.
- ``parley:replies-running:<user id>``: a sorted set, a user's running
  replies and their lease ends (``chats.replies.slots``).
- ``parley:worker:<worker id>:alive``: a key that each worker running replies
  sets every ``WORKER_HEARTBEAT_SECONDS`` and that expires three beats later,
  so that readers can tell a reply whose worker died (``chats.replies.liveness``).
- ``parley:deployment:<name>:failures`` and ``…:cooldown``: a deployment's
  recent failures and, once they are too many, its cooldown; both expire on
  their own (``chats.llm.cooldown``).
- ``parley:reply-stops``: a pub/sub channel, "stop this reply", heard by the
  worker running it (``chats.replies.runner``).
- Django's cache (throttle counters, ``:1:throttle_…``): its own client, which
  Django builds from the same URL (``CACHES`` in the settings).

Without ``REDIS_URL`` nothing here is used: the clients are ``None`` and
each owner keeps its state in the process.
"""

from functools import cache
from typing import Any

from django.conf import settings

from core.loops import PerLoop

REPLY_STOPS_CHANNEL = "parley:reply-stops"

#: How long a stream read may block; the async client's sockets wait longer than that.
STREAM_READ_BLOCK_MS = 5000


def reply_events_key(reply_id: Any) -> str:
    return f"parley:reply:{reply_id}:events"


def worker_alive_key(worker_id: str) -> str:
    return f"parley:worker:{worker_id}:alive"


def deployment_failures_key(deployment: str) -> str:
    return f"parley:deployment:{deployment}:failures"


def deployment_cooldown_key(deployment: str) -> str:
    return f"parley:deployment:{deployment}:cooldown"


def replies_running_key(user_id: Any) -> str:
    return f"parley:replies-running:{user_id}"


def sync_client():
    """The process's blocking client (for code running in threads), or None without Redis."""
    return _sync_client(settings.REDIS_URL) if settings.REDIS_URL else None


@cache
def _sync_client(url: str):
    import redis

    return redis.Redis.from_url(url)


def async_client():
    """The running loop's asyncio client (its connections belong to that loop), or None."""
    return _async_clients.get() if settings.REDIS_URL else None


def _new_async_client():
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(
        settings.REDIS_URL, max_connections=4096, socket_timeout=STREAM_READ_BLOCK_MS / 1000 + 5
    )


_async_clients = PerLoop(_new_async_client)
