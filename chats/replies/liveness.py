"""Whether the worker writing a reply is alive: a heartbeat per worker in Redis.

A reply's events are written by the one worker that runs it. If that worker
dies (killed, out of memory, its machine gone), its reply's Redis stream
stops short of its last event, and a reader resuming on another worker
would wait for an event that never comes. So each worker that runs replies
keeps a key alive in Redis (``parley:worker:<id>:alive``, set every
``WORKER_HEARTBEAT_SECONDS``, expiring after three beats), and a reply's
first event names its worker: a reader can tell "still running" from "its
worker is gone" within three beats, long before the reply's lease runs out.

Without Redis a reply is read only by the process that runs it, which is
alive by definition.
"""

import asyncio
import logging
import os
import socket
import uuid

from django.conf import settings

from core.redis import async_client, worker_alive_key

logger = logging.getLogger(__name__)

#: This process, as the first event of each of its replies names it.
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def alive_ttl_seconds() -> int:
    """How long a worker counts as alive after its last beat: three beats."""
    return max(1, round(settings.WORKER_HEARTBEAT_SECONDS * 3))


async def beat_while(running: dict) -> None:
    """Say this worker is alive while ``running`` (its replies) is not empty."""
    redis = async_client()
    while running:
        try:
            await redis.set(worker_alive_key(WORKER_ID), 1, ex=alive_ttl_seconds())
        except Exception:  # Redis is down: readers elsewhere cannot read the reply either
            logger.warning("The worker heartbeat could not reach Redis", exc_info=True)
        await asyncio.sleep(settings.WORKER_HEARTBEAT_SECONDS)


async def writer_alive(redis, writer: str | None) -> bool:
    """Whether the worker named by a reply's first event still beats (an unnamed one is assumed to)."""
    return writer is None or bool(await redis.exists(worker_alive_key(writer)))
