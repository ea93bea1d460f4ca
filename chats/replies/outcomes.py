"""The life of one reply, as an async generator of domain outcomes.

``reply_outcomes`` yields a :class:`Delta` for each piece of text, then one
:class:`Finished` or :class:`Failed` carrying the stored, settled reply. It
knows nothing of HTTP: :mod:`chats.replies.views` renders the outcomes as
Server-Sent Events or as one JSON body.

It runs on the event loop: no thread is busy and no database connection is
held while tokens flow. The database is touched through ``sync_to_async``:
``reply_begin`` before (by the endpoint), ``reply_finish``
after, the latter shielded from cancellation so that a client who
disconnects still gets its partial reply stored and charged, and the hold
never outlives the request.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError

from chats.llm import (
    BYTES_PER_TOKEN,
    Chunk,
    LLMStream,
    LLMUnavailable,
    chunk_generated,
    chunk_text,
)
from chats.llm.routing import Route, open_stream
from chats.models import Message
from chats.replies import keepalive
from chats.replies.services import (
    FINISH_ERROR,
    FINISH_STOPPED,
    ReplyPlan,
    Settlement,
    replies_lease_renew,
    reply_finish,
)
from core import metrics
from core.asgi import outliving_the_request
from core.db.connections import release_connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delta:
    """A piece of the reply's text, as the model produced it; for ``/v1/``, the whole chunk it came
    in (tool calls, logprobs, every choice), to forward."""

    content: str
    chunk: Chunk | None = None


@dataclass(frozen=True)
class Finished:
    """The reply ended normally: stored ``complete`` and charged; why the model stopped."""

    reply: Settlement
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Failed:
    """The model failed: the reply is stored (``failed``, or ``incomplete`` with what came) and settled."""

    error: LLMUnavailable
    reply: Settlement


ReplyOutcome = Delta | Finished | Failed


def _in_thread(work: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return work(**kwargs)
    finally:
        release_connection()


async def run_shielded(work: Callable[..., Any], **kwargs: Any) -> Any:
    """A service that settles money, run in a thread to its end even if the caller is cancelled
    (and its request over), and retried while the database does not answer (see
    :func:`_until_done`)."""
    done = asyncio.create_task(_until_done(work, kwargs), context=outliving_the_request())
    return await asyncio.shield(done)


#: The first wait before a settlement is tried again; it doubles up to the last.
RETRY_BACKOFF_FIRST, RETRY_BACKOFF_MOST = 0.05, 2.0


async def _until_done(work: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``work`` tried again, with backoff, while the database is unreachable (restarting, failing
    over), for up to half of ``REPLY_LEASE_SECONDS``: what a client was sent is then stored and
    charged once the database is back. Within the half, the reply's lease still runs, so the stale
    sweep leaves it alone; past it the sweep may close the reply, and the settlement's claim (a
    conditional UPDATE) makes sure that only one of them charges. Trying again is safe even when
    the first try did commit before its connection broke: the claim finds the reply settled."""
    deadline = time.monotonic() + settings.REPLY_LEASE_SECONDS / 2
    delay = RETRY_BACKOFF_FIRST
    while True:
        try:
            return await sync_to_async(_in_thread, thread_sensitive=True)(work, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "%s could not reach the database (%s); trying again in %.2f s", work.__name__, exc, delay
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, RETRY_BACKOFF_MOST)


async def _close_quietly(stream: LLMStream | None) -> None:
    if stream is None:
        return
    try:
        await asyncio.shield(stream.aclose())
    except Exception:  # closing a broken upstream must not hide the real outcome
        logger.warning("Closing the upstream stream failed", exc_info=True)


def _count(plan, route: Route | None, *, status: str, result: Settlement) -> None:
    """A settled reply in the metrics (``/metrics``): its outcome, tokens and credits, by model."""
    model = plan.catalogue_model.public_id
    metrics.REPLIES.labels(model, route.deployment if route is not None else "none", status).inc()
    metrics.TOKENS.labels(model, "prompt").inc(result.usage.prompt_tokens)
    metrics.TOKENS.labels(model, "completion").inc(result.usage.completion_tokens)
    metrics.CREDITS.labels(model).inc(result.cost)


class StopSignal:
    """A request to stop a reply; what was registered with ``on_set`` runs the moment it is set."""

    def __init__(self) -> None:
        self._set = False
        self._callbacks: list[Callable[[], Any]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            for callback in self._callbacks:
                callback()

    def on_set(self, callback: Callable[[], Any]) -> None:
        if self._set:
            callback()
        else:
            self._callbacks.append(callback)


def reply_outcomes(plan: ReplyPlan, *, stop: StopSignal | None = None) -> AsyncIterator[ReplyOutcome]:
    """A chat reply's outcomes: stored as a message of its session.

    Once ``stop`` is set the upstream is closed, and the reply ends
    ``incomplete``, charged for what was produced, as a ``Finished``.
    """
    lease = (replies_lease_renew, plan.assistant_message_id)
    return settled_outcomes(plan, finish=reply_finish, lease=lease, stop=stop)


async def settled_outcomes(
    plan, *, finish, lease, stop: StopSignal | None = None, chunks: bool = False
) -> AsyncIterator[ReplyOutcome]:
    """Deltas as they come, then ``Finished`` or ``Failed``; settles on every path.

    The one path by which a chat reply and a ``/v1/`` completion are streamed and paid for:
    they differ in ``finish`` (where the result is stored), ``lease`` (what is renewed) and
    ``chunks`` (``/v1/`` forwards every chunk; a chat reply wants its text).

    An upstream that generates past what the hold pays for (``max_tokens`` for
    each choice, by the estimate rule) is cut there: the chunk that would cross
    the bound is not passed on, the upstream is closed, and the reply ends
    with ``finish_reason: "length"``, charged for what was passed on.
    """
    parts: list[str] = []
    stream: LLMStream | None = None
    route: Route | None = None
    failure: LLMUnavailable | None = None
    interrupted = False
    cut = False
    bound_bytes = plan.max_tokens * plan.choices * BYTES_PER_TOKEN
    generated_bytes = 0
    keepalive.keep(*lease)
    metrics.REPLIES_RUNNING.inc()
    asked_at = time.monotonic()
    try:
        try:
            stream, route = await open_stream(
                plan.routes, messages=plan.prompt, max_tokens=plan.max_tokens, options=plan.options
            )
            first_token = time.monotonic() - asked_at
            metrics.TIME_TO_FIRST_TOKEN.labels(plan.catalogue_model.public_id).observe(first_token)
            if stop is not None:  # stop within one chunk: close the upstream, even while it is silent
                stop.on_set(lambda: asyncio.ensure_future(_close_quietly(stream)))
            async for chunk in stream:
                generated = chunk_generated(chunk)
                generated_bytes += len(generated.encode())
                if generated_bytes > bound_bytes:
                    cut = True
                    break
                parts.append(generated)
                if chunks:
                    yield Delta(chunk_text(chunk), chunk)
                elif text := chunk_text(chunk):
                    yield Delta(text)
                if stop is not None and stop.is_set():
                    break
        except LLMUnavailable as exc:
            if stop is None or not stop.is_set():  # a stream closed on purpose is not a failure
                failure = exc
    except BaseException:
        # The client went away (CancelledError, or GeneratorExit when the
        # server drops the generator): keep and charge what was produced.
        interrupted = True
        raise
    finally:
        # Settle on every path. The client may also leave during the await
        # that closes the upstream: the reply is stored and its hold settled
        # all the same, as it ended.
        keepalive.release(*lease)
        metrics.REPLIES_RUNNING.dec()
        stopped = stop is not None and stop.is_set()
        content = "".join(parts)
        if interrupted or stopped or (failure is not None and content):
            status, usage = Message.Status.INCOMPLETE, None
        elif failure is not None:
            status, usage = Message.Status.FAILED, None
        else:
            status, usage = Message.Status.COMPLETE, None if cut else stream.usage
        if failure is not None:
            finish_reason = FINISH_ERROR
        elif interrupted or stopped:
            finish_reason = FINISH_STOPPED
        else:
            finish_reason = "length" if cut else stream.finish_reason or "stop"
        try:
            await _close_quietly(stream)
        finally:
            result = await run_shielded(
                finish,
                plan=plan,
                content=content,
                usage=usage,
                status=status,
                finish_reason=finish_reason,
                deployment=route.deployment if route is not None else "",
            )
            _count(plan, route, status=status, result=result)

    if failure is None:
        yield Finished(result, finish_reason=finish_reason)
    else:
        yield Failed(failure, result)
