"""A reply's event log: its events, numbered 1, 2, 3…, for whoever reads them, whenever.

The reply writes each event once (:func:`append`); readers follow the log
from any point (:func:`follow`): the POST that started the reply is simply
its first reader, and a client that lost its connection resumes after the
last event it saw. The writer never waits for a reader.

Two stores behind one interface:

- in the process (always): the replies this worker runs, kept
  ``REPLY_EVENTS_TTL`` seconds after they end. Local readers read here,
  with no round trip.
- a Redis stream per reply (when ``REDIS_URL`` is set): the same events,
  so that any worker can serve a reader (``XADD``, ``XREAD BLOCK``),
  expired ``REPLY_EVENTS_TTL`` seconds after the end.

Both hold one reply's events, no more (a reply has at most
``LLM_MAX_TOKENS`` deltas), whoever reads them or not: a slow reader, or
none, costs the writer nothing.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from chats.replies import liveness
from core.redis import STREAM_READ_BLOCK_MS, async_client, reply_events_key, worker_alive_key

logger = logging.getLogger(__name__)


TERMINAL = frozenset({"done", "error"})


# While a reply runs its Redis stream lives this long at most: a worker that
# dies mid-reply leaves nothing behind for ever.
RUNNING_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: str  # JSON

    def frame(self) -> bytes:
        return f"id: {self.id}\nevent: {self.name}\ndata: {self.data}\n\n".encode()

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL


@dataclass
class _LocalLog:
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False


class LogMissing(Exception):
    """No log for this reply here: it never ran, or its events have expired."""


class WriterGone(Exception):
    """The reply's log stops short of its end, and the worker that wrote it is dead."""


# The logs of replies running in this process (Redis mirrors them when there is one).
_local_logs: dict[str, _LocalLog] = {}


def open_log(reply_id: Any) -> None:
    """Start this process's log of a reply (before its first event, so readers can wait on it)."""
    _local_logs[str(reply_id)] = _LocalLog()


async def append(reply_id: Any, event_id: int, name: str, data: dict[str, Any]) -> Event:
    """Write one event; readers here are woken, and the Redis stream gets it too."""
    event = Event(event_id, name, json.dumps(data, separators=(",", ":"), default=str))
    log = _local_logs[str(reply_id)]
    log.events.append(event)
    log.changed.set()
    log.changed = asyncio.Event()
    redis = async_client()
    if redis is not None:
        try:
            await _redis_append(redis, reply_id, event)
        except Exception as exc:  # the reply goes on; only readers on other workers miss it
            # One line per event, no traceback: a Redis outage must not flood the logs.
            logger.warning("Could not write event %s of reply %s to Redis: %r", event_id, reply_id, exc)
    if event.terminal:
        _end(reply_id)
    return event


async def _redis_append(redis, reply_id: Any, event: Event) -> None:
    key = reply_events_key(reply_id)
    fields = {"e": event.name, "d": event.data}
    async with redis.pipeline(transaction=False) as pipe:
        if event.id == 1:  # the first event names its writer, whose heartbeat starts with it
            fields["w"] = liveness.WORKER_ID
            pipe.set(worker_alive_key(liveness.WORKER_ID), 1, ex=liveness.alive_ttl_seconds())
        pipe.xadd(key, fields, id=f"{event.id}-0")
        if event.id == 1:
            pipe.expire(key, RUNNING_TTL_SECONDS)
        if event.terminal:
            pipe.expire(key, settings.REPLY_EVENTS_TTL)
        await pipe.execute()


def _end(reply_id: Any) -> None:
    log = _local_logs[str(reply_id)]
    log.ended = True
    asyncio.get_running_loop().call_later(settings.REPLY_EVENTS_TTL, _local_logs.pop, str(reply_id), None)


async def follow(reply_id: Any, *, after: int = 0) -> AsyncIterator[Event]:
    """Every event after ``after``, once and in order, then live until the last one.

    From this process when the reply runs (or ran) here, else from Redis;
    :class:`LogMissing` when neither has it, :class:`WriterGone` (before the
    first event, or while waiting for the next) when the log stops short and
    its writer is dead.
    """
    log = _local_logs.get(str(reply_id))
    if log is not None:
        async for event in _follow_local(log, after):
            yield event
        return
    redis = async_client()
    if redis is None or not await redis.exists(reply_events_key(reply_id)):
        raise LogMissing(reply_id)
    async for event in _follow_redis(redis, reply_id, after):
        yield event


async def _follow_local(log: _LocalLog, after: int) -> AsyncIterator[Event]:
    position = 0
    while True:
        changed = log.changed
        while position < len(log.events):
            event = log.events[position]
            position += 1
            if event.id > after:
                yield event
            if event.terminal:
                return
        if log.ended:
            return
        await changed.wait()


async def _follow_redis(redis, reply_id: Any, after: int) -> AsyncIterator[Event]:
    key, last = reply_events_key(reply_id), f"{after}-0"
    writer = await _writer(redis, key)
    if not await _has_ended(redis, key) and not await liveness.writer_alive(redis, writer):
        raise WriterGone(reply_id)  # a log cut short: the database, not the log, says how it ended
    while True:
        if await _ended_before(redis, key, after=int(last.split("-")[0])):
            return  # nothing more will come: the reader already has the last event
        # Block at most so long, then check that the stream still exists and its writer lives.
        answer = await redis.xread({key: last}, block=STREAM_READ_BLOCK_MS, count=256)
        if not answer:
            if not await redis.exists(key):
                return  # expired while we waited: the caller falls back to the database
            if not await liveness.writer_alive(redis, writer):
                raise WriterGone(reply_id)
            continue
        for entry_id, fields in answer[0][1]:
            last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            event = Event(int(last.split("-")[0]), _text(fields[b"e"]), _text(fields[b"d"]))
            yield event
            if event.terminal:
                return


async def _writer(redis, key: str) -> str | None:
    """The worker that writes this log, as its first event names it."""
    first = await redis.xrange(key, count=1)
    writer = first[0][1].get(b"w") if first else None
    return None if writer is None else _text(writer)


async def reply_running_nowhere(reply_id: Any) -> bool:
    """Whether no live worker writes this reply's log: it has no log here nor in Redis, or its log
    stops short of its end and its writer is dead. Asked of a reply the database says is pending."""
    if str(reply_id) in _local_logs:
        return False  # this process runs it (or ran it): alive
    redis = async_client()
    if redis is None:
        return True
    key = reply_events_key(reply_id)
    if not await redis.exists(key):
        return True
    if await _has_ended(redis, key):
        return False
    return not await liveness.writer_alive(redis, await _writer(redis, key))


async def _last_event(redis, key: str) -> tuple[int, bool] | None:
    """The number of the log's last event, and whether it is the terminal one (None: empty)."""
    last = await redis.xrevrange(key, count=1)
    if not last:
        return None
    entry_id, fields = last[0]
    return int(_text(entry_id).split("-")[0]), _text(fields[b"e"]) in TERMINAL


async def _has_ended(redis, key: str) -> bool:
    """Whether the log holds its terminal event: complete, whoever wrote it and whether they live."""
    last = await _last_event(redis, key)
    return last is not None and last[1]


async def _ended_before(redis, key: str, *, after: int) -> bool:
    """Whether the stream's last event is its terminal one and the reader is already past it."""
    last = await _last_event(redis, key)
    return last is not None and last[1] and last[0] <= after


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
