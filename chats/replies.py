"""The life of one streamed reply, as an async generator of events.

It runs on the event loop: no thread is busy and no database connection is
held while tokens flow. The database is touched twice, through
``sync_to_async``: ``services.reply_begin`` before (by the view) and
``services.reply_finish`` after, the latter shielded from cancellation so
that a client who disconnects still gets its partial reply stored and
charged, and the hold never outlives the request.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection

from chats import services
from chats.llm import LLMStream, LLMUnavailable, get_provider
from chats.models import Message
from chats.serializers import MessageSerializer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyEvent:
    name: str  # "delta" | "done" | "error"
    data: dict[str, Any] = field(default_factory=dict)
    status: int = 200  # the HTTP status this outcome has in JSON mode


def release_connection() -> None:
    """Hand this thread's database connection back (to the pool, if there is one).

    Not inside an atomic block: there the connection is someone's open
    transaction (a test's, typically), not ours to end.
    """
    if not connection.in_atomic_block:
        connection.close()


def _finish_and_release_connection(**kwargs) -> services.ReplyResult:
    try:
        return services.reply_finish(**kwargs)
    finally:
        release_connection()


async def _finish(plan: services.ReplyPlan, content: str, usage, status: str) -> services.ReplyResult:
    work = sync_to_async(_finish_and_release_connection, thread_sensitive=True)
    return await asyncio.shield(work(plan=plan, content=content, usage=usage, status=status))


async def _close_quietly(stream: LLMStream | None) -> None:
    if stream is None:
        return
    try:
        await asyncio.shield(stream.aclose())
    except Exception:  # closing a broken upstream must not hide the real outcome
        logger.warning("Closing the upstream stream failed", exc_info=True)


def _done_data(result: services.ReplyResult) -> dict[str, Any]:
    return {
        "message": MessageSerializer(result.message).data,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        },
        "cost": result.cost,
        "balance": result.balance,
    }


async def reply_events(plan: services.ReplyPlan) -> AsyncIterator[ReplyEvent]:
    """Deltas as they come, then ``done`` or ``error``; settles on every path."""
    parts: list[str] = []
    stream: LLMStream | None = None
    failure: LLMUnavailable | None = None
    interrupted = False
    try:
        try:
            stream = await get_provider().stream(
                messages=plan.prompt, model=plan.model, max_tokens=plan.max_tokens
            )
            async for delta in stream:
                if delta:
                    parts.append(delta)
                    yield ReplyEvent("delta", {"content": delta})
        except LLMUnavailable as exc:
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
        content = "".join(parts)
        if interrupted or (failure is not None and content):
            status, usage = Message.Status.INCOMPLETE, None
        elif failure is not None:
            status, usage = Message.Status.FAILED, None
        else:
            status, usage = Message.Status.COMPLETE, stream.usage
        try:
            await _close_quietly(stream)
        finally:
            result = await _finish(plan, content, usage, status)

    if failure is None:
        yield ReplyEvent("done", _done_data(result))
        return
    details = {**failure.details, **_done_data(result)}
    error = {"code": failure.code, "message": failure.message, "details": details}
    yield ReplyEvent("error", {"error": error}, status=failure.status_code)
