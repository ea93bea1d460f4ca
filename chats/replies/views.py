"""The HTTP side of a reply: ``POST /api/sessions/{id}/messages/``.

Everything between the request and the reply's domain outcomes lives here:
authentication, permissions, throttling and body parsing (DRF's, through the
same classes as every endpoint, run by :class:`MessagePostView`), the SSE
framing and the JSON rendering of :func:`chats.replies.outcomes.reply_outcomes`, and
the POST's OpenAPI schema.

The endpoint is an async Django view, because a streamed reply must not hold
a thread: DRF views are sync, so its checks and ``reply_begin`` run in one
trip to a thread, and the reply then streams on the event loop. The GET on
the same URL (the history) is the DRF view :class:`chats.conversations.views.SessionMessagesView`.
"""

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import uuid4

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.conversations.views import SessionMessagesView
from chats.errors import (
    ReplyEnded,
    ReplyNotRunning,
    ShuttingDown,
    TooManyReplies,
)
from chats.models import Message
from chats.replies import event_log, payloads, runner, sse
from chats.replies.outcomes import Failed, Finished, ReplyOutcome
from chats.replies.selectors import reply_get
from chats.replies.serializers import MessageInputSerializer, ReplySerializer
from chats.replies.services import ReplyPlan, reply_begin, reply_regenerate
from chats.replies.slots import reply_slot_give_back, reply_slot_take
from chats.throttles import MessageThrottle
from core.asgi import outliving_the_request
from core.db.connections import release_connection
from core.errors import DomainError, ValidationFailed
from core.exceptions import UNEXPECTED_ERROR, error_response
from core.openapi import error_responses
from core.responses import JsonResponse


class AdmittingView(APIView):
    """DRF's checks for a streamed endpoint, and its reservation, in one trip to a thread.

    Authentication, permissions, throttles and the JSON parser are DRF's, as
    on every endpoint; ``begin`` (the subclass's) reserves the reply. The
    stream itself then runs on the event loop, outside DRF.
    """

    def admit(self, request: HttpRequest, **kwargs: Any) -> Any:
        """The reply's plan, or the rendered error response that refuses it.

        Follows DRF 3.18's ``APIView.dispatch``, with ``begin`` for the handler,
        and its ``initial()`` but for content negotiation and versioning: a
        stream is asked for with ``Accept: text/event-stream``, which no DRF
        renderer offers, so negotiating would refuse it (406) before the checks;
        errors are JSON whatever was accepted (``finalize_response`` negotiates
        with ``force=True``); and no endpoint is versioned.
        ``test_admit_follows_drfs_dispatch`` fails when DRF changes those steps.
        """
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

    def begin(self, request: Request, *, pk) -> ReplyPlan:
        data = MessageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self.in_a_slot(
            request,
            partial(
                reply_begin,
                user=request.user,
                session_id=pk,
                content=data.validated_data["content"],
                parent_id=data.validated_data.get("parent_id"),
            ),
        )

    @staticmethod
    def in_a_slot(request: Request, reserve: Callable[..., ReplyPlan]) -> ReplyPlan:
        """``reserve(reply_id=…)`` once a slot is taken; the reply's id is its slot among the user's
        running replies, given back when the reply ends (or now, if it never begins)."""
        reply_id = uuid4()
        slot = {"user_id": request.user.pk, "token": str(reply_id)}
        if not reply_slot_take(**slot):
            raise TooManyReplies()
        try:
            return reserve(reply_id=reply_id)
        except BaseException:
            reply_slot_give_back(**slot)
            raise


class RegenerateView(MessagePostView):
    """A new answer to a reply's question, beside it: admitted as a new message is."""

    def begin(self, request: Request, *, pk, message_id) -> ReplyPlan:
        return self.in_a_slot(
            request,
            lambda reply_id: reply_regenerate(
                user=request.user, session_id=pk, reply_id=message_id, new_reply_id=reply_id
            ),
        )


class ReplyView(AdmittingView):
    """An existing reply of the caller's session: to follow its events, or to stop it."""

    def begin(self, request: Request, *, pk, message_id) -> Message:
        return reply_get(user=request.user, session_id=pk, message_id=message_id)


class ReplyStopView(ReplyView):
    def begin(self, request: Request, *, pk, message_id) -> Message:
        reply = super().begin(request, pk=pk, message_id=message_id)
        if reply.status != Message.Status.PENDING:
            raise ReplyEnded()
        return reply


@csrf_exempt
async def session_messages_endpoint(request: HttpRequest, pk) -> HttpResponse:
    """One URL, two natures: the history is a DRF list; a new message starts a reply and follows it."""
    if request.method != "POST":
        return await sync_to_async(_history)(request, pk=pk)
    return await _reply(request, partial(MessagePostView().admit, request, pk=pk))


@csrf_exempt
async def reply_regenerate_endpoint(request: HttpRequest, pk, message_id) -> HttpResponse:
    """``POST …/messages/{id}/regenerate/``: a new reply to the same question, streamed as a message's."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    return await _reply(request, partial(RegenerateView().admit, request, pk=pk, message_id=message_id))


async def _reply(request: HttpRequest, admit: Callable[[], Any]) -> HttpResponse:
    """Admit a reply (``admit``: DRF's checks, a slot, the reservation), start it, and follow it."""
    if runner.shutting_down():
        return _error(ShuttingDown(), headers={"Retry-After": "1"})
    admitted = await admit_in_thread(admit, runner.reply_start)
    if isinstance(admitted, HttpResponse):
        return admitted
    # The reply runs on its own: this request is only its first reader.
    running = runner.reply_start(admitted)
    if _wants_json(request):
        return _reply_as_json(admitted, await asyncio.shield(running))
    return sse.event_stream(sse.follow(admitted.assistant_message_id, after=0, final=None))


@csrf_exempt
async def reply_events_endpoint(request: HttpRequest, pk, message_id) -> HttpResponse:
    """``GET …/messages/{id}/events/``: the events after ``Last-Event-ID`` (or ``?after=``), then live."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    # Who asks comes first (401, then 404), as on every endpoint; then what they ask for (400).
    admitted = await sync_to_async(ReplyView().admit)(request, pk=pk, message_id=message_id)
    if isinstance(admitted, HttpResponse):
        return admitted
    after = _after(request)
    if isinstance(after, HttpResponse):
        return after
    if admitted.status == Message.Status.PENDING and await event_log.reply_running_nowhere(admitted.id):
        return _error(ReplyNotRunning())  # its worker died: the stale sweep will close it
    return sse.event_stream(sse.follow(admitted.id, after=after, final=admitted))


@csrf_exempt
async def reply_stop_endpoint(request: HttpRequest, pk, message_id) -> HttpResponse:
    """``POST …/messages/{id}/stop/``: 202; the reply stops within one chunk wherever it runs."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    admitted = await sync_to_async(ReplyStopView().admit)(request, pk=pk, message_id=message_id)
    if isinstance(admitted, HttpResponse):
        return admitted
    if await event_log.reply_running_nowhere(admitted.id) or not await runner.reply_stop(admitted.id):
        return _error(ReplyNotRunning())
    return JsonResponse({"id": str(admitted.id), "status": "stopping"}, status=status.HTTP_202_ACCEPTED)


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
                response=sse.EVENT_SCHEMA,
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


class RegenerateURLView(APIView):
    """What the OpenAPI schema sees at ``…/messages/{message_id}/regenerate/``, served above."""

    @extend_schema(
        operation_id="sessions_messages_regenerate",
        description=(
            "Answer an assistant reply's question again: a new reply beside it (same `parent_id`), "
            "streamed and billed as a new message's; the earlier reply is kept. 409 while that reply "
            "is still pending."
        ),
        request=None,
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=sse.EVENT_SCHEMA, description="As a message's."
            ),
            (201, "application/json"): OpenApiResponse(
                response=ReplySerializer, description="With `Accept: application/json`: the whole reply."
            ),
            **error_responses(400, 401, 402, 404, 409, 429, 502, 503),
        },
    )
    def post(
        self, request: Request, pk=None, message_id=None
    ) -> Response:  # pragma: no cover - never routed here
        raise drf_exceptions.MethodNotAllowed("POST")


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=999_999_999,
        help_text="The last event seen (its `id:`); ignored when the `Last-Event-ID` header is sent.",
    )


class ReplyEventsURLView(APIView):
    """What the OpenAPI schema sees at ``…/messages/{message_id}/events/``, served above."""

    @extend_schema(
        operation_id="sessions_messages_events",
        description=(
            "Follow a reply: its events after the last one seen, then live until it ends; how a client "
            "resumes a stream it lost. Once its events have expired, the stored reply comes as one "
            "last `done` or `error` event."
        ),
        parameters=[
            EventsQuerySerializer,
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                pattern="^[0-9]{1,9}$",
                description="What browsers resend on reconnecting: the last event seen.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                response=sse.EVENT_SCHEMA, description="The events after the one given, as a message's."
            ),
            **error_responses(400, 401, 404),
        },
    )
    def get(
        self, request: Request, pk=None, message_id=None
    ) -> Response:  # pragma: no cover - never routed here
        raise drf_exceptions.MethodNotAllowed("GET")


class StopSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="stopping")


class ReplyStopURLView(APIView):
    """What the OpenAPI schema sees at ``…/messages/{message_id}/stop/``, served above."""

    @extend_schema(
        operation_id="sessions_messages_stop",
        description=(
            "Stop a pending reply, on whichever worker runs it: it ends within one chunk (its stream's "
            "last event says so). 409 `conflict` once it has ended; 409 `reply_unavailable` when no "
            "worker runs it any more (it is closed shortly)."
        ),
        request=None,
        responses={202: StopSerializer, **error_responses(401, 404, 409)},
    )
    def post(
        self, request: Request, pk=None, message_id=None
    ) -> Response:  # pragma: no cover - never routed here
        raise drf_exceptions.MethodNotAllowed("POST")


_history = SessionMessagesView.as_view()


session_messages_endpoint.cls = SessionMessagesURLView


session_messages_endpoint.initkwargs = {}


reply_regenerate_endpoint.cls = RegenerateURLView


reply_regenerate_endpoint.initkwargs = {}


reply_events_endpoint.cls = ReplyEventsURLView


reply_events_endpoint.initkwargs = {}


reply_stop_endpoint.cls = ReplyStopURLView


reply_stop_endpoint.initkwargs = {}


async def admit_in_thread(
    admit: Callable[[], Any],
    abandoned: Callable[[Any], Any],
    *,
    plan_of: Callable[[Any], Any] = lambda plan: plan,
) -> Any:
    """``admit()`` (DRF's checks, then a reservation) in a thread; if the client leaves meanwhile,
    hand what it committed to ``abandoned``.

    Django cancels the view when the client disconnects, but the thread
    running the reservation cannot be stopped and may still commit it: then
    ``abandoned(plan)`` takes over (a chat reply runs anyway; a ``/v1/``
    request is finished as ``failed``), rather than leave the hold to the
    stale-hold sweep. ``plan_of`` finds the plan in what ``admit`` returned.
    """
    begin = asyncio.ensure_future(sync_to_async(admit)())
    try:
        return await asyncio.shield(begin)
    except asyncio.CancelledError:
        await asyncio.shield(
            asyncio.create_task(_abandon(begin, abandoned, plan_of), context=outliving_the_request())
        )
        raise


async def _abandon(
    begin: asyncio.Future, abandoned: Callable[[Any], Any], plan_of: Callable[[Any], Any]
) -> None:
    admitted = await begin
    if not isinstance(admitted, HttpResponse):
        outcome = abandoned(plan_of(admitted))
        if asyncio.iscoroutine(outcome):
            await outcome


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/event-stream" not in accept


def _error(error: DomainError, *, headers: dict[str, str] | None = None) -> JsonResponse:
    """A refusal decided after DRF's checks, in the one error shape."""
    response = error_response(error.code, error.message, error.status_code, error.details)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = error_response("method_not_allowed", f"Use {allowed}.", status.HTTP_405_METHOD_NOT_ALLOWED)
    response["Allow"] = allowed
    return response


def _after(request: HttpRequest) -> int | HttpResponse:
    """The last event the client saw: ``Last-Event-ID`` (what browsers resend), else ``?after=``."""
    raw = request.headers.get("Last-Event-ID", request.GET.get("after", "0"))
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return _error(ValidationFailed(details={"after": ["A whole number of events, zero or more."]}))
    return int(raw)


def _reply_as_json(plan: ReplyPlan, last: ReplyOutcome | None) -> JsonResponse:
    if isinstance(last, Failed):
        return JsonResponse(payloads.error_data(last), status=last.error.status_code)
    if not isinstance(last, Finished):
        return error_response(*UNEXPECTED_ERROR, 500)
    body = payloads.reply_json(plan, last.reply)
    return JsonResponse(body, status=status.HTTP_201_CREATED, encoder=DjangoJSONEncoder)
