"""Server-Sent Events of a reply: the streaming response, the frames a reader follows, and
their OpenAPI description."""

import json
import logging
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

from chats.models import Message
from chats.replies import event_log, payloads
from core.db.connections import release_connection
from core.errors import dependency_down
from core.exceptions import error_body
from wallets import selectors as wallet_selectors

logger = logging.getLogger(__name__)


def _event_schema(name: str, data: str) -> dict:
    """One Server-Sent Event: its name, and its ``data`` line, a JSON document described in words.

    OpenAPI 3.0 can say neither that ``data`` holds JSON (``contentSchema`` is 3.1) nor what a
    stream's items are (``itemSchema`` is 3.2), so ``schema`` describes one event, as tools read it.
    """
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": [name]},
            "data": {"type": "string", "description": f"JSON: {data}"},
        },
    }


EVENT_SCHEMA = {
    "oneOf": [
        _event_schema("start", "`{user_message: Message, assistant_message_id: uuid}`, first."),
        _event_schema("delta", "`{content: string}`, a piece of the reply, repeated."),
        _event_schema(
            "done", "`{message: Message, finish_reason: str, usage: Usage, cost: int, balance: int}`, last."
        ),
        _event_schema("error", "`Error` (`{error: {code, message, details}}`), last, instead of done."),
    ]
}


def event_stream(frames: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def follow(reply_id, *, after: int, final: Message | None) -> AsyncIterator[bytes]:
    """The log's events after ``after``; once it has expired, or when the worker writing it died,
    the stored reply as one last event: a reader always learns how its reply ended."""
    try:
        async for event in event_log.follow(reply_id, after=after):
            yield event.frame()
        return
    except (event_log.LogMissing, event_log.WriterGone):
        if final is None:
            raise
    except Exception as exc:
        # Redis went away while the log was read from it: the answer has started (200), so the
        # reader is told in an event rather than by a dropped connection, and may resume later.
        down = dependency_down(exc)
        if down is None:
            raise
        logger.warning("Following reply %s: %s is down", reply_id, down.details["dependency"])
        body = error_body(down.code, down.message, down.details)
        yield event_log.Event(0, "error", json.dumps(body, separators=(",", ":"))).frame()
        return
    yield await sync_to_async(_stored_reply_frame, thread_sensitive=True)(final)


def _stored_reply_frame(reply: Message) -> bytes:
    """A reply whose events are gone, from the database, as one last event."""
    try:
        reply.refresh_from_db()
        wallet = wallet_selectors.wallet_for_user(user=reply.session.user)
    finally:
        release_connection()
    name, data = payloads.stored_event(reply, balance=wallet.balance)
    return event_log.Event(0, name, json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))).frame()
