"""The HTTP side of ``/v1/``: OpenAI's API, for programs, with personal API keys.

``/v1/models`` lists the active categories and the catalogue's active models; ``/v1/chat/completions``
answers in OpenAI's format, streamed or not, through the same reservation and
settlement as a chat reply (:func:`chats.v1.services.completion_outcomes`), charged
to the key's owner. Authentication is a personal key (``Bearer pk-…``) only,
looked up on every request, so a revoked key or a deactivated user is refused
at once on every worker. Errors are in OpenAI's shape, Parley's fields kept.
"""

import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication, api_key_wanted
from chats.catalogue.selectors import models_active
from chats.conversations.selectors import categories_active
from chats.errors import ModelNotFound
from chats.llm import LLMUnavailable, UpstreamRefused
from chats.llm.routing import provider_for
from chats.replies.outcomes import Delta, Failed, Finished, ReplyOutcome, run_shielded
from chats.replies.slots import reply_slot_give_back
from chats.replies.views import AdmittingView, MessagePostView, admit_in_thread
from chats.throttles import MessageThrottle
from chats.v1 import schema
from chats.v1.assembly import CompletionAssembly
from chats.v1.responses import ResponsesTranslator, responses_request, sse_event
from chats.v1.services import (
    CompletionPlan,
    completion_begin,
    completion_finish,
    completion_outcomes,
    embedding_begin,
    embedding_usage,
)
from chats.v1.wire import (
    CompletionRequest,
    chunk_json,
    completion_id,
    completion_request,
    created_now,
    embedding_request,
    model_json,
    openai_error,
    usage_json,
)
from core.exceptions import exception_handler
from core.responses import JsonResponse

logger = logging.getLogger(__name__)


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """The project's one exception handler, its answer rewritten in OpenAI's error shape.

    A refused request is logged with the parameter at fault and why, so that an
    operator can tell which client sends what (Django's own line names only the path).
    """
    response = exception_handler(exc, context)
    response.data = openai_error(response.data["error"])
    error = response.data["error"]
    if 400 <= response.status_code < 500:
        request = context.get("request")
        logger.info(
            "/v1/ refused %s %s: %s %s (param=%s): %s",
            getattr(request, "method", ""),
            getattr(request, "path", ""),
            response.status_code,
            error["code"],
            error["param"],
            error["message"],
        )
    return response


class OpenAIView:
    """What every ``/v1/`` view shares: a personal key, OpenAI's error shape."""

    authentication_classes = [ApiKeyAuthentication]

    def get_exception_handler(self):
        return openai_exception_handler

    def permission_denied(self, request: Request, message=None, code=None):
        # No key authenticated the request: say what was wrong with what it sent, rather
        # than DRF's "credentials were not provided" for a JWT or a secret that is no key.
        if request.authenticators and not request.successful_authenticator:
            raise api_key_wanted(request)
        super().permission_denied(request, message=message, code=code)


@extend_schema_view(
    list=extend_schema(**schema.MODEL_LIST),
    retrieve=extend_schema(**schema.MODEL_DETAIL),
)
class ModelsViewSet(OpenAIView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/v1/models`` and ``/v1/models/{id}``: the active categories by slug, then the catalogue's
    active models by id, each priced by its catalogue model. A model whose id is also a category's
    slug is listed once, as the category: a request naming it means the category."""

    pagination_class = None
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return categories_active().select_related("model")

    def list(self, request: Request) -> Response:
        categories = list(self.get_queryset())
        slugs = {category.slug for category in categories}
        data = [_category_json(category) for category in categories] + [
            _catalogue_json(model) for model in models_active() if model.public_id not in slugs
        ]
        return Response({"object": "list", "data": data})

    def retrieve(self, request: Request, pk=None) -> Response:
        # No id holds a NUL, which PostgreSQL refuses even to compare: no such model.
        if "\x00" not in pk:
            if (category := self.get_queryset().filter(slug=pk).first()) is not None:
                return Response(_category_json(category))
            if (model := models_active().filter(public_id=pk).first()) is not None:
                return Response(_catalogue_json(model))
        raise ModelNotFound(f"The model {pk!r} does not exist.", details={"model": pk})


def _category_json(category) -> dict[str, Any]:
    return model_json(model_id=category.slug, created_at=category.created_at, priced=category.model)


def _catalogue_json(model) -> dict[str, Any]:
    return model_json(model_id=model.public_id, created_at=model.created_at, priced=model)


class CompletionPostView(OpenAIView, AdmittingView):
    """``POST /v1/chat/completions``: checked, then reserved; the stream runs outside DRF."""

    throttle_classes = [MessageThrottle]

    def begin(self, request: Request) -> tuple[Any, Any]:
        wanted = completion_request(request.data)
        return _in_a_slot(request, wanted), wanted


async def _admit(
    view: type[AdmittingView], request: HttpRequest, *, abandoned: Callable[[CompletionPlan], Awaitable[None]]
) -> HttpResponse | tuple[Any, Any]:
    """A POST's checks and reservation (``(plan, wanted)``), or the response that refuses it;
    ``abandoned`` settles a reservation whose client left while it was being made."""
    if request.method != "POST":
        response = _error_response({"code": "method_not_allowed", "message": "Use POST."}, status=405)
        response["Allow"] = "POST"
        return response
    return await admit_in_thread(
        partial(view().admit, request), abandoned, plan_of=lambda admitted: admitted[0]
    )


async def _answered(plan: CompletionPlan) -> JsonResponse | tuple[ReplyOutcome, AsyncIterator[ReplyOutcome]]:
    """The upstream's first outcome and the rest, or the HTTP error of a request that failed before
    its first chunk: a response starts only once the upstream has answered."""
    outcomes = completion_outcomes(plan)
    first = await anext(outcomes)
    if isinstance(first, Failed):
        return _failure_response(first.error)
    return first, outcomes


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """A request that fails before its first chunk is an HTTP error the SDKs understand (the
    upstream's own 4xx, or 502/503), never a 200 whose stream carries the error."""
    admitted = await _admit(CompletionPostView, request, abandoned=_abandoned_in_a_slot)
    if isinstance(admitted, HttpResponse):
        return admitted
    plan, wanted = admitted
    answered = await _answered(plan)
    if isinstance(answered, HttpResponse):
        return answered
    first, outcomes = answered
    if not wanted.stream:
        return await _completion_as_json(plan, wanted, first, outcomes)
    return _event_stream(_chunks(plan, wanted, first, outcomes))


def _event_stream(frames: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # no proxy buffering: each event as it comes
    return response


def _in_a_slot(request: Request, wanted: CompletionRequest) -> CompletionPlan:
    """Reserved in one of the user's reply slots, as a chat reply is: one limit for both."""
    return MessagePostView.in_a_slot(
        request,
        lambda reply_id: completion_begin(
            user=request.user, api_key=request.auth, request=wanted, record_id=reply_id
        ),
    )


async def _abandoned(plan: CompletionPlan) -> None:
    """The client left while its request was reserved: on ``/v1/`` a disconnect ends the request."""
    await run_shielded(completion_finish, plan=plan, content="", usage=None, status="failed")


async def _abandoned_in_a_slot(plan: CompletionPlan) -> None:
    """As :func:`_abandoned`, for a request that took one of its user's reply slots: given back."""
    await _abandoned(plan)
    await run_shielded(reply_slot_give_back, user_id=plan.user.pk, token=str(plan.record_id))


def _error_response(error: dict[str, Any], *, status: int) -> JsonResponse:
    return JsonResponse(openai_error({"details": {}, **error}), status=status)


def _failure(error: LLMUnavailable) -> dict[str, Any]:
    """The error a failed request is told of: what the upstream refused, as it said it."""
    if isinstance(error, UpstreamRefused):
        return {"error": error.error}
    return openai_error({"code": error.code, "message": error.message, "details": error.details})


def _failure_response(error: LLMUnavailable) -> JsonResponse:
    status = error.upstream_status if isinstance(error, UpstreamRefused) else error.status_code
    response = JsonResponse(_failure(error), status=status)
    if status in (429, 503):
        response["Retry-After"] = str(max(1, math.ceil(error.retry_after or 1)))
    return response


async def _completion_as_json(
    plan: CompletionPlan,
    wanted: CompletionRequest,
    first: ReplyOutcome,
    outcomes: AsyncIterator[ReplyOutcome],
) -> JsonResponse:
    assembly = CompletionAssembly()
    last = first
    if isinstance(first, Delta):
        assembly.add(first.chunk)
        async for last in outcomes:
            if isinstance(last, Delta):
                assembly.add(last.chunk)
    if isinstance(last, Failed):
        return _failure_response(last.error)
    body = {
        "id": completion_id(plan.record_id),
        "object": "chat.completion",
        "created": created_now(),
        "model": wanted.model,
        "choices": assembly.choices(finish_reason=last.finish_reason, count=plan.choices),
        "usage": usage_json(last.reply.usage, cost=last.reply.cost),
    }
    return JsonResponse(body, encoder=DjangoJSONEncoder)


def _data(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


async def _chunks(
    plan: CompletionPlan,
    wanted: CompletionRequest,
    first: ReplyOutcome,
    outcomes: AsyncIterator[ReplyOutcome],
) -> AsyncIterator[bytes]:
    """OpenAI's stream: the upstream's chunks as it sent them (Parley's ``id`` and ``model``), a
    finish chunk for each choice the upstream left open, the usage if asked, ``[DONE]``.

    A failure mid-stream is an ``error`` event (the SDKs raise it), with no ``[DONE]``.
    """
    record_id, created = completion_id(plan.record_id), created_now()
    finished: set[int] = set()
    outcome = first
    while True:
        match outcome:
            case Delta(chunk=chunk):
                for choice in chunk["choices"]:
                    if choice.get("finish_reason"):
                        finished.add(choice.get("index", 0))
                chunk["id"], chunk["model"] = record_id, wanted.model
                yield _data(chunk)
            case Finished():
                frame = partial(chunk_json, record_id=plan.record_id, model=wanted.model, created=created)
                open_choices = [
                    {"index": index, "delta": {}, "finish_reason": outcome.finish_reason}
                    for index in range(plan.choices)
                    if index not in finished
                ]
                if open_choices:
                    yield _data(frame(choices=open_choices))
                if wanted.include_usage:
                    yield _data(
                        {
                            **frame(choices=[]),
                            "usage": usage_json(outcome.reply.usage, cost=outcome.reply.cost),
                        }
                    )
                yield _data("[DONE]")
                return
            case Failed():
                yield _data(_failure(outcome.error))
                return
        outcome = await anext(outcomes)


class ResponsesPostView(OpenAIView, AdmittingView):
    """``POST /v1/responses``: OpenAI's Responses API, over the upstream's chat completions."""

    throttle_classes = [MessageThrottle]

    def begin(self, request: Request) -> tuple[Any, Any]:
        wanted = responses_request(request.data)
        chat = completion_request({**wanted.chat_body, "model": wanted.model})
        return _in_a_slot(request, chat), wanted


@csrf_exempt
async def responses(request: HttpRequest) -> HttpResponse:
    """Stateless: every request carries its whole conversation. As for a chat completion, the
    response starts once the upstream has answered."""
    admitted = await _admit(ResponsesPostView, request, abandoned=_abandoned_in_a_slot)
    if isinstance(admitted, HttpResponse):
        return admitted
    plan, wanted = admitted
    answered = await _answered(plan)
    if isinstance(answered, HttpResponse):
        return answered
    first, outcomes = answered
    translator = ResponsesTranslator(
        response_id=f"resp_{plan.record_id.hex}", model=wanted.model, request=wanted
    )
    events = _response_events(translator, first, outcomes)
    if wanted.stream:
        return _event_stream(sse_event(event) async for event in events)
    async for event in events:
        if event["type"] == "response.failed":
            return _error_response(
                {"code": "llm_unavailable", "message": event["response"]["error"]["message"]}, status=502
            )
    return JsonResponse(translator.response(), encoder=DjangoJSONEncoder)


async def _response_events(
    translator: ResponsesTranslator, first: ReplyOutcome, outcomes: AsyncIterator[ReplyOutcome]
) -> AsyncIterator[dict[str, Any]]:
    for event in translator.start():
        yield event
    outcome = first
    while True:
        match outcome:
            case Delta(chunk=chunk):
                events = translator.feed(chunk)
            case Finished(reply=reply):
                usage = {
                    "input_tokens": reply.usage.prompt_tokens,
                    "output_tokens": reply.usage.completion_tokens,
                    "total_tokens": reply.usage.prompt_tokens + reply.usage.completion_tokens,
                    "cost": reply.cost,
                }
                events = translator.finish(usage=usage, finish_reason=outcome.finish_reason)
            case Failed(error=error):
                # OpenAI's codes for a failed response are a fixed list: an upstream failure is server_error.
                events = translator.fail(code="server_error", message=error.message)
        for event in events:
            yield event
        if not isinstance(outcome, Delta):
            return
        outcome = await anext(outcomes)


class EmbeddingsPostView(OpenAIView, AdmittingView):
    """``POST /v1/embeddings``: billed by its prompt tokens at the model's prompt price."""

    throttle_classes = [MessageThrottle]

    def begin(self, request: Request) -> tuple[Any, Any]:
        wanted = embedding_request(request.data)
        return embedding_begin(user=request.user, api_key=request.auth, request=wanted), wanted


@csrf_exempt
async def embeddings(request: HttpRequest) -> HttpResponse:
    """The upstream's answer as it came, with Parley's ``model`` and ``usage`` (``cost`` added); the
    request is settled whatever happens, the client's leaving included."""
    admitted = await _admit(EmbeddingsPostView, request, abandoned=_abandoned)
    if isinstance(admitted, HttpResponse):
        return admitted
    plan, wanted = admitted
    settle = partial(run_shielded, completion_finish, plan=plan, content="")
    try:
        route = plan.routes[0]  # embeddings are not failed over: a vector's model must not change
        answer = await provider_for(route).embeddings(model=route.upstream_model, options=plan.options)
    except LLMUnavailable as exc:
        await settle(usage=None, status="failed")
        return _failure_response(exc)
    except BaseException:
        await settle(usage=None, status="failed")
        raise
    usage = embedding_usage(answer, tokens_bound=wanted.tokens_bound)
    result = await settle(usage=usage, status="complete")
    answer["model"] = wanted.model
    tokens = usage.prompt_tokens
    answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens, "cost": result.cost}
    return JsonResponse(answer, encoder=DjangoJSONEncoder)


# What the OpenAPI schema sees at these URLs (chats/v1/schema.py).
chat_completions.cls, chat_completions.initkwargs = schema.ChatCompletionsURLView, {}
responses.cls, responses.initkwargs = schema.ResponsesURLView, {}
embeddings.cls, embeddings.initkwargs = schema.EmbeddingsURLView, {}
