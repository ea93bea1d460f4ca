"""A reply's event log on its own: numbered events, followed from any point, in the process and
through Redis, and "missing" once nobody has it."""

import asyncio
import uuid

import pytest

from chats.replies import event_log
from core.redis import reply_events_key

REDIS_URL = "redis://127.0.0.1:6379/9"  # this module's own database, flushed around each test


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:
        return False


requires_redis = pytest.mark.skipif(
    not _redis_answers(), reason="needs Redis answering PING at 127.0.0.1:6379"
)


async def write(reply_id, names: list[str]) -> None:
    for number, name in enumerate(names, start=1):
        await event_log.append(reply_id, number, name, {"n": number})


async def read(reply_id, *, after: int = 0) -> list[tuple[int, str]]:
    return [(event.id, event.name) async for event in event_log.follow(reply_id, after=after)]


async def test_a_reader_gets_every_event_after_its_point_then_stops_at_the_last(settings):
    settings.REDIS_URL = ""
    reply_id = uuid.uuid4()
    event_log.open_log(reply_id)
    await write(reply_id, ["start", "delta", "delta", "done"])

    assert await read(reply_id) == [(1, "start"), (2, "delta"), (3, "delta"), (4, "done")]
    assert await read(reply_id, after=2) == [(3, "delta"), (4, "done")]
    assert await read(reply_id, after=4) == []


async def test_a_reader_waits_for_events_not_written_yet(settings):
    settings.REDIS_URL = ""
    reply_id = uuid.uuid4()
    event_log.open_log(reply_id)
    reader = asyncio.ensure_future(read(reply_id))
    await asyncio.sleep(0)
    await write(reply_id, ["start", "delta", "error"])

    assert await asyncio.wait_for(reader, 5) == [(1, "start"), (2, "delta"), (3, "error")]


async def test_a_log_nobody_has_is_missing(settings):
    settings.REDIS_URL = ""
    with pytest.raises(event_log.LogMissing):
        await read(uuid.uuid4())


def test_a_frame_is_one_server_sent_event():
    event = event_log.Event(7, "delta", '{"content":"hi"}')
    assert event.frame() == b'id: 7\nevent: delta\ndata: {"content":"hi"}\n\n'
    assert not event.terminal
    assert event_log.Event(8, "done", "{}").terminal


@requires_redis
async def test_another_worker_follows_the_log_through_redis(settings):
    import redis.asyncio as aioredis

    settings.REDIS_URL = REDIS_URL
    flush = aioredis.Redis.from_url(REDIS_URL)
    await flush.flushdb()
    reply_id = uuid.uuid4()
    event_log.open_log(reply_id)
    await write(reply_id, ["start", "delta", "done"])
    event_log._local_logs.pop(str(reply_id))  # as a worker that never ran the reply sees it

    try:
        assert await read(reply_id, after=1) == [(2, "delta"), (3, "done")]
        assert 0 < await flush.ttl(reply_events_key(reply_id)) <= settings.REPLY_EVENTS_TTL
    finally:
        await flush.flushdb()
        await flush.aclose()


@requires_redis
async def test_an_ended_log_is_read_whole_after_its_worker_went_quiet(settings):
    """A worker's heartbeat stops when it runs no reply: an ended log it wrote is still read
    from Redis, every event, not taken for a log cut short by a dead worker."""
    import redis.asyncio as aioredis

    settings.REDIS_URL = REDIS_URL
    flush = aioredis.Redis.from_url(REDIS_URL)
    await flush.flushdb()
    reply_id = uuid.uuid4()
    event_log.open_log(reply_id)
    await write(reply_id, ["start", "delta", "done"])
    event_log._local_logs.pop(str(reply_id))  # as a worker that never ran the reply sees it
    await flush.delete(*await flush.keys("parley:worker:*"))  # its writer's heartbeat has lapsed

    try:
        assert await read(reply_id) == [(1, "start"), (2, "delta"), (3, "done")]
        assert await event_log.reply_running_nowhere(reply_id) is False
    finally:
        await flush.flushdb()
        await flush.aclose()
