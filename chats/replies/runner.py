"""Chat replies that outlive their request: each runs as a task of its own on this worker.

:func:`reply_start` launches the reply once it is reserved; the task renders
its outcomes as Server-Sent Events into the reply's log
(:mod:`chats.replies.event_log`), whoever reads them: the POST that started it, a
client resuming on any worker, or nobody. A reply stops early when asked
(:func:`reply_stop`, through Redis from any worker), and a worker shutting
down lets its replies run for ``REPLY_SHUTDOWN_GRACE`` seconds, then stops
and settles the rest (:func:`replies_shutdown`).
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from chats.llm import aclose_clients
from chats.replies import event_log, keepalive, liveness, payloads
from chats.replies.outcomes import Failed, Finished, ReplyOutcome, StopSignal, reply_outcomes
from chats.replies.services import ReplyPlan
from chats.replies.slots import reply_slot_give_back, reply_slots_renew
from core.asgi import outliving_the_request
from core.loops import PerLoop
from core.redis import REPLY_STOPS_CHANNEL, async_client

logger = logging.getLogger(__name__)


@dataclass
class _Running:
    task: asyncio.Task
    stop: StopSignal


@dataclass
class _Worker:
    """The reply runtime of one event loop, that is of one server.

    A process may run several servers, one after another or side by side (a
    test run does): one server's shutdown, and its grace timer, stop its own
    replies only, and its successor on the same loop starts with a clean slate.
    """

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    running: dict[str, _Running] = field(default_factory=dict)
    stop_listener: asyncio.Task | None = None
    heartbeat: asyncio.Task | None = None
    shutdown_asked_at: float | None = None
    grace_timer: asyncio.TimerHandle | None = None

    def stop_all(self) -> None:
        for running in list(self.running.values()):
            running.stop.set()


_workers = PerLoop(_Worker)


def shutting_down() -> bool:
    """Whether this worker (the running loop) takes no new replies."""
    return _workers.get().shutdown_asked_at is not None


def reply_start(plan: ReplyPlan) -> asyncio.Task:
    """Run the reply to its end whatever becomes of the request; the task's result is its last outcome."""
    reply_id = str(plan.assistant_message_id)
    event_log.open_log(reply_id)
    stop = StopSignal()
    task = asyncio.create_task(_run(plan, stop), context=outliving_the_request())
    worker = _workers.get()
    worker.running[reply_id] = _Running(task, stop)
    task.add_done_callback(lambda _: worker.running.pop(reply_id, None))
    _listen_for_stops(worker)
    _beat(worker)
    return task


async def _run(plan: ReplyPlan, stop: StopSignal) -> ReplyOutcome | None:
    reply_id, user_id = str(plan.assistant_message_id), plan.user_message.session.user_id
    slot = (user_id, reply_id)
    keepalive.keep(reply_slots_renew, slot)
    number, last = 1, None
    try:
        await event_log.append(reply_id, number, "start", payloads.start_data(plan))
        async for last in reply_outcomes(plan, stop=stop):
            number += 1
            await event_log.append(reply_id, number, *payloads.event(last))
        return last
    except Exception:
        logger.exception("Reply %s failed", reply_id)
        if not isinstance(last, Finished | Failed):
            await event_log.append(reply_id, number + 1, "error", payloads.unexpected_error_data())
        return None
    finally:
        keepalive.release(reply_slots_renew, slot)
        await sync_to_async(reply_slot_give_back, thread_sensitive=False)(user_id=user_id, token=reply_id)


async def reply_stop(reply_id: Any) -> bool:
    """Ask a running reply to stop, on whichever worker runs it; False if no worker can be told."""
    reply_id = str(reply_id)
    for loop, worker in _workers.items():
        running = worker.running.get(reply_id)
        if running is None:
            continue
        if loop is asyncio.get_running_loop():
            running.stop.set()
        else:  # the signal's callbacks touch the reply's task: they run on the reply's own loop
            loop.call_soon_threadsafe(running.stop.set)
        return True
    redis = async_client()
    if redis is None:  # one worker without Redis: a reply not running here runs nowhere
        return False
    await redis.publish(REPLY_STOPS_CHANNEL, reply_id)
    return True


def _beat(worker: _Worker) -> None:
    """The worker's heartbeat, for readers on other workers, while it runs replies."""
    if async_client() is None or (worker.heartbeat and not worker.heartbeat.done()):
        return
    beating = liveness.beat_while(worker.running)
    worker.heartbeat = asyncio.create_task(beating, context=outliving_the_request())


def _listen_for_stops(worker: _Worker) -> None:
    """One subscriber per worker to the stop channel, started with its first reply."""
    if async_client() is None or (worker.stop_listener and not worker.stop_listener.done()):
        return
    worker.stop_listener = asyncio.create_task(_stops(worker))


async def _stops(worker: _Worker) -> None:
    pubsub = async_client().pubsub()
    try:
        await pubsub.subscribe(REPLY_STOPS_CHANNEL)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            reply_id = message["data"].decode() if isinstance(message["data"], bytes) else message["data"]
            running = worker.running.get(reply_id)
            if running is not None:
                running.stop.set()
    except Exception:
        logger.warning("The reply stop listener stopped", exc_info=True)
    finally:
        await pubsub.aclose()


def replies_startup() -> None:
    """A server starts on this loop: it takes replies, and a grace timer left by the loop's
    previous server is cancelled before it can stop the new server's replies."""
    worker = _workers.get()
    if worker.grace_timer is not None:
        worker.grace_timer.cancel()
    worker.shutdown_asked_at = worker.grace_timer = None


def shutdown_asked() -> None:
    """The worker was asked to stop (SIGTERM): take no new replies, and stop the running ones when
    the grace is over, even while their readers keep the server's connections open."""
    worker = _workers.get()
    if worker.shutdown_asked_at is None:
        worker.shutdown_asked_at = time.monotonic()
        worker.grace_timer = worker.loop.call_later(settings.REPLY_SHUTDOWN_GRACE, worker.stop_all)


async def replies_shutdown() -> None:
    """Let this worker's replies finish within the grace (counted from SIGTERM), then stop and
    settle the rest; replies running on other loops of the process are not this worker's."""
    shutdown_asked()
    worker = _workers.get()
    tasks = [running.task for running in worker.running.values()]
    if tasks:
        grace = settings.REPLY_SHUTDOWN_GRACE - (time.monotonic() - worker.shutdown_asked_at)
        _, pending = await asyncio.wait(tasks, timeout=max(grace, 0))
        worker.stop_all()
        if pending:
            logger.warning("Stopping %d reply(ies) still running after the shutdown grace", len(pending))
            await asyncio.wait(pending, timeout=settings.LLM_TIMEOUT)
    if worker.stop_listener is not None:
        worker.stop_listener.cancel()
    await aclose_clients()  # the upstream's connections, closed rather than dropped
