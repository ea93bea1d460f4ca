"""OpenAI's wire format for ``/v1/``: the request read strictly, the responses and errors written.

Reading is strict on purpose: a parameter Parley does not support is a 400
that names it, never silently dropped, so a program learns at once that
``tools`` or ``n=2`` will not do what it expects.
"""

import time
from dataclasses import dataclass, field
from typing import Any

from chats.errors import InvalidParameter, UnsupportedParameter
from chats.llm import ChatMessage

ROLES = ("system", "user", "assistant")


# Passed to the upstream as they are, once checked.
SAMPLING = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}


KNOWN = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n"}


PASSED_THROUGH = {*SAMPLING, "stop", "seed", "user"}


MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: list[ChatMessage]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def completion_request(body: Any) -> CompletionRequest:
    """The request of ``POST /v1/chat/completions``, or :class:`InvalidParameter` naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidParameter("The body must be a JSON object.", param=None)
    for name in body:
        if name not in KNOWN and name not in PASSED_THROUGH:
            raise UnsupportedParameter(f"Parley does not support the parameter '{name}'.", param=name)
    if body.get("n", 1) != 1:
        raise UnsupportedParameter("Only n=1 is supported.", param="n")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidParameter("'model' must be the name of a model (see /v1/models).", param="model")
    stream = _boolean(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise InvalidParameter("'stream_options' takes only 'include_usage'.", param="stream_options")
        include_usage = _boolean(options, "include_usage", param="stream_options.include_usage")
    return CompletionRequest(
        model=model,
        messages=_messages(body.get("messages")),
        stream=stream,
        include_usage=include_usage,
        max_tokens=_max_tokens(body),
        options=_passed_through(body),
    )


def _boolean(body: dict, name: str, *, param: str | None = None) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidParameter(f"'{param or name}' must be true or false.", param=param or name)
    return value


def _messages(messages: Any) -> list[ChatMessage]:
    if not isinstance(messages, list) or not messages:
        raise InvalidParameter("'messages' must be a non-empty list.", param="messages")
    return [_message(message, f"messages[{index}]") for index, message in enumerate(messages)]


def _message(message: Any, param: str) -> ChatMessage:
    if not isinstance(message, dict):
        raise InvalidParameter(f"'{param}' must be an object.", param=param)
    for name in message:
        if name not in ("role", "content"):
            raise UnsupportedParameter(f"Parley does not support '{param}.{name}'.", param=f"{param}.{name}")
    role = message.get("role")
    if role not in ROLES:
        raise UnsupportedParameter(
            f"'{param}.role' must be one of {', '.join(ROLES)} (tools and functions are not supported).",
            param=f"{param}.role",
        )
    return ChatMessage(role=role, content=_content(message.get("content"), f"{param}.content"))


def _content(content: Any, param: str) -> str:
    """A string, or a list of text parts joined; images, audio and files are not supported."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidParameter(f"'{param}' must be a string or a list of text parts.", param=param)
    texts = []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise UnsupportedParameter(f"'{part_param}': only text parts are supported.", param=part_param)
        if set(part) - {"type", "text"}:
            raise UnsupportedParameter(
                f"'{part_param}': only 'type' and 'text' are supported.", param=part_param
            )
        texts.append(part["text"])
    return "".join(texts)


def _max_tokens(body: dict) -> int | None:
    """``max_completion_tokens`` (or the older ``max_tokens``); the services cap it at ``LLM_MAX_TOKENS``."""
    name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(f"'{name}' must be a positive integer.", param=name)
    return value


def _passed_through(body: dict) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, (low, high) in SAMPLING.items():
        if body.get(name) is not None:
            value = body[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise InvalidParameter(f"'{name}' must be a number from {low} to {high}.", param=name)
            options[name] = value
    if body.get("seed") is not None:
        if isinstance(body["seed"], bool) or not isinstance(body["seed"], int):
            raise InvalidParameter("'seed' must be an integer.", param="seed")
        options["seed"] = body["seed"]
    if body.get("user") is not None:
        if not isinstance(body["user"], str):
            raise InvalidParameter("'user' must be a string.", param="user")
        options["user"] = body["user"]
    if body.get("stop") is not None:
        stop = body["stop"]
        sequences = [stop] if isinstance(stop, str) else stop
        if (
            not isinstance(sequences, list)
            or not 1 <= len(sequences) <= MAX_STOP_SEQUENCES
            or not all(isinstance(item, str) and item for item in sequences)
        ):
            raise InvalidParameter(
                f"'stop' must be a string or a list of at most {MAX_STOP_SEQUENCES} strings.", param="stop"
            )
        options["stop"] = stop
    return options


def completion_id(record_id: Any) -> str:
    return f"chatcmpl-{getattr(record_id, 'hex', record_id)}"


def usage_json(usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def completion_json(*, record_id, model: str, content: str, finish_reason: str, usage) -> dict[str, Any]:
    """A ``chat.completion``: the whole answer of a request sent without ``stream``."""
    return {
        "id": completion_id(record_id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_json(usage),
    }


def chunk_json(
    *, record_id, model: str, created: int, delta: dict | None = None, finish_reason: str | None = None
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; with no ``delta`` and no ``finish_reason``, the usage chunk's frame."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    return {
        "id": completion_id(record_id),
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def model_json(category) -> dict[str, Any]:
    return {
        "id": category.slug,
        "object": "model",
        "created": int(category.created_at.timestamp()),
        "owned_by": "parley",
    }


# Parley's error codes as OpenAI's clients know them: (OpenAI's code, its type).
_OPENAI_ERRORS = {
    "not_authenticated": ("invalid_api_key", "invalid_request_error"),
    "token_not_valid": ("invalid_api_key", "invalid_request_error"),
    "permission_denied": ("permission_denied", "invalid_request_error"),
    "model_not_found": ("model_not_found", "invalid_request_error"),
    "not_found": ("not_found", "invalid_request_error"),
    "validation_error": ("invalid_request_error", "invalid_request_error"),
    "unsupported_parameter": ("unsupported_parameter", "invalid_request_error"),
    "unsupported_media_type": ("invalid_request_error", "invalid_request_error"),
    "payload_too_large": ("invalid_request_error", "invalid_request_error"),
    "method_not_allowed": ("invalid_request_error", "invalid_request_error"),
    "insufficient_funds": ("insufficient_quota", "insufficient_quota"),
    "spend_cap_reached": ("spend_cap_reached", "insufficient_quota"),
    "throttled": ("rate_limit_exceeded", "requests"),
    "llm_unavailable": ("upstream_error", "api_error"),
    "server_error": ("server_error", "api_error"),
}


def openai_error(error: dict[str, Any]) -> dict[str, Any]:
    """Parley's ``{"error": {code, message, details}}`` in OpenAI's shape, Parley's fields kept.

    ``param`` names the parameter at fault: the one a ``/v1/`` check named, or
    the first field of a validation error.
    """
    code, kind = _OPENAI_ERRORS.get(error["code"], (error["code"], "invalid_request_error"))
    details = error.get("details") or {}
    param = details.get("param")
    message = error["message"]
    if param is None and error["code"] == "validation_error" and details:
        param, problems = next(iter(details.items()))
        if param == "non_field_errors":
            param = None
        message = f"{message} {problems[0] if isinstance(problems, list) and problems else ''}".strip()
    return {"error": {"message": message, "type": kind, "param": param, "code": code, "details": details}}
