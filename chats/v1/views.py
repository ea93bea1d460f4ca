"""The HTTP side of ``/v1/``: OpenAI's API, for programs, with personal API keys.

``/v1/models`` lists the active categories as models; ``/v1/chat/completions``
answers in OpenAI's format, streamed or not, through the same reservation and
settlement as a chat reply (:func:`chats.v1.services.completion_outcomes`), charged
to the key's owner. Authentication is a personal key (``Bearer pk-…``) only,
looked up on every request, so a revoked key or a deactivated user is refused
at once on every worker. Errors are in OpenAI's shape, Parley's fields kept.
"""

import json
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from chats.conversations.selectors import categories_active
from chats.errors import ModelNotFound
from chats.replies.outcomes import Delta, Failed, Finished, ReplyOutcome, run_shielded
from chats.replies.views import AdmittingView, admit_in_thread
from chats.throttles import MessageThrottle
from chats.v1.services import CompletionPlan, completion_begin, completion_finish, completion_outcomes
from chats.v1.wire import (
    chunk_json,
    completion_json,
    completion_request,
    model_json,
    openai_error,
    usage_json,
)
from core.exceptions import exception_handler


def openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """The project's one exception handler, its answer rewritten in OpenAI's error shape."""
    response = exception_handler(exc, context)
    response.data = openai_error(response.data["error"])
    return response


class OpenAIView:
    """What every ``/v1/`` view shares: a personal key, OpenAI's error shape."""

    authentication_classes = [ApiKeyAuthentication]

    def get_exception_handler(self):
        return openai_exception_handler


@extend_schema(exclude=True)  # OpenAI's own API: documented in docs/api.md
class ModelsViewSet(OpenAIView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/v1/models`` and ``/v1/models/{id}``: the active categories, by slug."""

    pagination_class = None
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return categories_active()

    def list(self, request: Request) -> Response:
        return Response(
            {"object": "list", "data": [model_json(category) for category in self.get_queryset()]}
        )

    def retrieve(self, request: Request, pk=None) -> Response:
        category = self.get_queryset().filter(slug=pk).first()
        if category is None:
            raise ModelNotFound(f"The model {pk!r} does not exist.", details={"model": pk})
        return Response(model_json(category))


class CompletionPostView(OpenAIView, AdmittingView):
    """``POST /v1/chat/completions``: checked, then reserved; the stream runs outside DRF."""

    throttle_classes = [MessageThrottle]

    def begin(self, request: Request) -> tuple[Any, Any]:
        wanted = completion_request(request.data)
        plan = completion_begin(
            user=request.user,
            api_key=request.auth,
            model=wanted.model,
            messages=wanted.messages,
            max_tokens=wanted.max_tokens,
            options=wanted.options,
        )
        return plan, wanted


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _error_response({"code": "method_not_allowed", "message": "Use POST."}, status=405)
    admitted = await admit_in_thread(
        partial(CompletionPostView().admit, request), _abandoned, plan_of=lambda admitted: admitted[0]
    )
    if isinstance(admitted, HttpResponse):
        return admitted
    plan, wanted = admitted
    if not wanted.stream:
        return await _completion_as_json(plan, wanted)
    response = StreamingHttpResponse(_chunks(plan, wanted), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def _abandoned(plan: CompletionPlan) -> None:
    """The client left while its request was reserved: on ``/v1/`` a disconnect ends the request."""
    await run_shielded(completion_finish, plan=plan, content="", usage=None, status="failed")


def _error_response(error: dict[str, Any], *, status: int) -> JsonResponse:
    return JsonResponse(openai_error({"details": {}, **error}), status=status)


def _failure(failed: Failed) -> dict[str, Any]:
    error = failed.error
    return openai_error({"code": error.code, "message": error.message, "details": error.details})


async def _completion_as_json(plan: CompletionPlan, wanted) -> JsonResponse:
    parts: list[str] = []
    last: ReplyOutcome | None = None
    async for last in completion_outcomes(plan):
        if isinstance(last, Delta):
            parts.append(last.content)
    if isinstance(last, Failed):
        return JsonResponse(_failure(last), status=last.error.status_code)
    body = completion_json(
        record_id=plan.record_id,
        model=wanted.model,
        content="".join(parts),
        finish_reason=last.finish_reason,
        usage=last.reply.usage,
    )
    return JsonResponse(body, encoder=DjangoJSONEncoder)


def _data(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


async def _chunks(plan: CompletionPlan, wanted) -> AsyncIterator[bytes]:
    """OpenAI's stream: a role chunk, content chunks, a finish chunk, the usage if asked, ``[DONE]``.

    A failure mid-stream is an ``error`` event (the SDKs raise it), with no ``[DONE]``.
    """
    chunk = partial(chunk_json, record_id=plan.record_id, model=wanted.model, created=int(time.time()))
    yield _data(chunk(delta={"role": "assistant", "content": ""}))
    async for outcome in completion_outcomes(plan):
        match outcome:
            case Delta(content):
                yield _data(chunk(delta={"content": content}))
            case Finished():
                yield _data(chunk(delta={}, finish_reason=outcome.finish_reason))
                if wanted.include_usage:
                    yield _data({**chunk(), "usage": usage_json(outcome.reply.usage)})
                yield _data("[DONE]")
            case Failed():
                yield _data(_failure(outcome))
