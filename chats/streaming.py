"""The HTTP side of a reply: ``POST /api/sessions/{id}/messages/``.

Everything between the request and the reply's domain outcomes lives here:
authentication, permissions, throttling and body parsing (DRF's, through the
same classes as every endpoint, run by :class:`MessagePostView`), the SSE
framing and the JSON rendering of :func:`chats.replies.reply_outcomes`, and
the POST's OpenAPI schema.

The endpoint is an async Django view, because a streamed reply must not hold
a thread: DRF views are sync, so its checks and ``reply_begin`` run in one
trip to a thread, and the reply then streams on the event loop. The GET on
the same URL (the history) is the DRF view :class:`chats.views.SessionMessagesView`.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats import services
from chats.models import Message
from chats.replies import (
    Delta,
    Failed,
    Finished,
    ReplyOutcome,
    release_connection,
    reply_outcomes,
    run_shielded,
)
from chats.serializers import MessageInputSerializer, MessageSerializer, ReplySerializer
from chats.throttles import MessageThrottle
from chats.views import SessionMessagesView
from core.openapi import error_responses


def _sse_event_schema(name: str, data: str) -> dict:
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


SSE_EVENT_SCHEMA = {
    "oneOf": [
        _sse_event_schema("start", "`{user_message: Message, assistant_message_id: uuid}`, first."),
        _sse_event_schema("delta", "`{content: string}`, a piece of the reply, repeated."),
        _sse_event_schema("done", "`{message: Message, usage: Usage, cost: int, balance: int}`, last."),
        _sse_event_schema("error", "`Error` (`{error: {code, message, details}}`), last, instead of done."),
    ]
}


class AdmittingView(APIView):
    """DRF's checks for a streamed endpoint, and its reservation, in one trip to a thread.

    Authentication, permissions, throttles and the JSON parser are DRF's, as
    on every endpoint; ``begin`` (the subclass's) reserves the reply. The
    stream itself then runs on the event loop, outside DRF.
    """

    def admit(self, request: HttpRequest, **kwargs: Any) -> Any:
        """The reply's plan, or the rendered error response that refuses it."""
        drf_request = self.initialize_request(request, **kwargs)
        self.request, self.args, self.kwargs = drf_request, (), kwargs
        self.headers = self.default_response_headers
        try:
            self.perform_authentication(drf_request)
            self.check_permissions(drf_request)
            self.check_throttles(drf_request)
            return self.begin(drf_request, **kwargs)
        except Exception as exc:
            response = self.finalize_response(drf_request, self.handle_exception(exc))
            return response.render()
        finally:
            # A stream can last a minute: holding a pooled connection that long
            # would let a few hundred readers starve every other request.
            release_connection()

    def begin(self, request: Request, **kwargs: Any) -> Any:
        raise NotImplementedError


class MessagePostView(AdmittingView):
    """A new message: a JWT (the project's default), the per-user message throttle."""

    throttle_classes = [MessageThrottle]

    def begin(self, request: Request, *, pk) -> services.ReplyPlan:
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return services.reply_begin(user=request.user, session_id=pk, content=data.validated_data["content"])


@csrf_exempt
async def session_messages_endpoint(request: HttpRequest, pk) -> HttpResponse:
    """One URL, two natures: the history is a DRF list; a new message streams its reply."""
    if request.method != "POST":
        return await sync_to_async(_history)(request, pk=pk)
    admitted = await admit_in_thread(partial(MessagePostView().admit, request, pk=pk), services.reply_finish)
    if isinstance(admitted, HttpResponse):
        return admitted
    if _wants_json(request):
        return await _reply_as_json(admitted)
    response = StreamingHttpResponse(_sse(admitted), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class SessionMessagesURLView(SessionMessagesView):
    """What the OpenAPI schema sees at this URL: the history's GET, and the POST served above."""

    @extend_schema(
        description=(
            "Send a message and receive the reply, streamed as Server-Sent Events, or as one JSON body "
            "with `Accept: application/json`. The most the reply can cost is reserved first "
            "(402 `insufficient_funds` otherwise); the real cost is charged when it ends."
        ),
        request=MessageInputSerializer,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=SSE_EVENT_SCHEMA,
                description=(
                    "Server-Sent Events: `start` {user_message, assistant_message_id}, `delta` {content} "
                    "repeated, then `done` {message, usage, cost, balance} or `error` {error}."
                ),
            ),
            (201, "application/json"): OpenApiResponse(
                response=ReplySerializer, description="With `Accept: application/json`: the whole reply."
            ),
            # Refusals come before the stream starts, as JSON; 502/503 only in JSON mode (a stream
            # that fails sends an `error` event instead).
            **error_responses(400, 401, 402, 404, 413, 415, 429, 502, 503),
        },
    )
    def post(self, request: Request, pk=None) -> Response:  # pragma: no cover - never routed here
        raise drf_exceptions.MethodNotAllowed("POST")


_history = SessionMessagesView.as_view()
session_messages_endpoint.cls = SessionMessagesURLView
session_messages_endpoint.initkwargs = {}


async def admit_in_thread(
    admit: Callable[[], Any], finish: Callable[..., Any], *, plan_of: Callable[[Any], Any] = lambda plan: plan
) -> Any:
    """``admit()`` (DRF's checks, then a reservation) in a thread; if the client leaves meanwhile,
    undo what it committed.

    Django cancels the view when the client disconnects, but the thread
    running the reservation cannot be stopped and may still commit it: then
    ``finish`` the reply at once as ``failed`` (the hold released, nothing
    charged) rather than leave it to the stale-hold sweep. ``plan_of`` finds
    the plan in what ``admit`` returned.
    """
    begin = asyncio.ensure_future(sync_to_async(admit)())
    try:
        return await asyncio.shield(begin)
    except asyncio.CancelledError:
        await asyncio.shield(_abandon(begin, finish, plan_of))
        raise


async def _abandon(begin: asyncio.Future, finish: Callable[..., Any], plan_of: Callable[[Any], Any]) -> None:
    admitted = await begin
    if not isinstance(admitted, HttpResponse):
        await run_shielded(
            finish, plan=plan_of(admitted), content="", usage=None, status=Message.Status.FAILED
        )


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/event-stream" not in accept


def _sse_frame(name: str, data: dict) -> bytes:
    # Bytes, not str: Django would otherwise look the charset up in the
    # Content-Type header again for each of a reply's frames.
    return f"event: {name}\ndata: {json.dumps(data, cls=DjangoJSONEncoder)}\n\n".encode()


def _done_data(reply: services.ReplyResult) -> dict[str, Any]:
    return {
        "message": MessageSerializer(reply.message).data,
        "usage": {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
        },
        "cost": reply.cost,
        "balance": reply.balance,
    }


def _error_data(failed: Failed) -> dict[str, Any]:
    error = failed.error
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": {**error.details, **_done_data(failed.reply)},
        }
    }


async def _sse(plan: services.ReplyPlan) -> AsyncIterator[bytes]:
    start = {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message_id": plan.assistant_message_id,
    }
    yield _sse_frame("start", start)
    async for outcome in reply_outcomes(plan):
        match outcome:
            case Delta(content):
                yield _sse_frame("delta", {"content": content})
            case Finished(reply=reply):
                yield _sse_frame("done", _done_data(reply))
            case Failed():
                yield _sse_frame("error", _error_data(outcome))


async def _reply_as_json(plan: services.ReplyPlan) -> JsonResponse:
    last: ReplyOutcome | None = None
    async for last in reply_outcomes(plan):  # noqa: B007 - only the final outcome is rendered
        pass
    if isinstance(last, Failed):
        return JsonResponse(_error_data(last), status=last.error.status_code)
    done = _done_data(last.reply)
    body = {
        "user_message": MessageSerializer(plan.user_message).data,
        "assistant_message": done.pop("message"),
        **done,
    }
    return JsonResponse(body, status=status.HTTP_201_CREATED, encoder=DjangoJSONEncoder)
