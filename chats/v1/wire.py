"""OpenAI's wire format for ``/v1/``: the request read, the responses and errors written.

Parley is a gateway. It owns the parameters that touch money or routing
(``model``, ``stream``/``stream_options``, ``max_tokens``/``max_completion_tokens``,
``n``, ``user``) and forwards everything else as the client sent it: OpenAI's
documented parameters are checked only as OpenAI documents them (a wrong type
is a 400 naming the parameter, before anything is reserved), and keys OpenAI
does not know (a vLLM server's ``top_k``) go through untouched for the
upstream to judge. Messages keep every role and field, and content parts of
every type, as parts.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from chats.errors import InvalidParameter
from chats.llm import WireMessage

ROLES = ("system", "developer", "user", "assistant", "tool")

# Content parts whose payload is not text: bounded per part (MEDIA_PART_TOKENS), their bytes
# (a base64 image) not counted as prompt text.
MEDIA_PARTS = {
    "image_url": ("image_url", "url"),
    "input_audio": ("input_audio", "data"),
    "file": ("file", "file_data"),
}

MAX_STOP_SEQUENCES = 4

# The parameters Parley reads itself; never forwarded as sent.
OWNED = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n"}


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    messages: list[WireMessage]
    stream: bool = False
    include_usage: bool = False
    #: What the client asked for, if it did (the services cap it, or bound it to the wallet).
    max_tokens: int | None = None
    n: int = 1
    #: Everything else, forwarded to the upstream as sent (``user`` included, on an ordinary key).
    options: dict[str, Any] = field(default_factory=dict)
    #: The request's size as the reservation counts it: its UTF-8 bytes without media payloads.
    prompt_bytes: int = 0
    media_parts: int = 0


def completion_request(body: Any) -> CompletionRequest:
    """The request of ``POST /v1/chat/completions``, or :class:`InvalidParameter` naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidParameter("The body must be a JSON object.", param=None)
    model = _model(body)
    stream = _boolean(body, "stream")
    include_usage = False
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise InvalidParameter("'stream_options' must be an object.", param="stream_options")
        include_usage = _boolean(stream_options, "include_usage", param="stream_options.include_usage")
    messages = _messages(body.get("messages"))
    options = {name: value for name, value in body.items() if name not in OWNED}
    for name, check in FORWARDED_CHECKS.items():
        if options.get(name) is not None:
            check(options[name], name)
    sized, media_parts = _without_media(messages)
    return CompletionRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=_max_tokens(body),
        n=_n(body),
        options=options,
        prompt_bytes=utf8_size([sized, options], param="messages"),
        media_parts=media_parts,
    )


def utf8_size(value: Any, *, param: str | None) -> int:
    """The bytes of ``value`` as JSON in UTF-8: what a request costs at most, one byte a token.

    Also where a lone surrogate (``"\\ud800"``, valid JSON but no text) is caught, once, for the
    whole request: neither the database nor the upstream could take it.
    """
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except UnicodeEncodeError:
        raise InvalidParameter(
            "The request holds a lone surrogate, which is not text.", param=param
        ) from None


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model or "\x00" in model:
        raise InvalidParameter("'model' must be the name of a model (see /v1/models).", param="model")
    utf8_size(model, param="model")  # read from the database before the rest is sized
    return model


def _boolean(body: dict, name: str, *, param: str | None = None) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParameter(f"'{param or name}' must be true or false.", param=param or name)
    return value


def _messages(messages: Any) -> list[WireMessage]:
    if not isinstance(messages, list) or not messages:
        raise InvalidParameter("'messages' must be a non-empty list.", param="messages")
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")
    return messages


def _check_message(message: Any, param: str) -> None:
    """A message as OpenAI documents it; fields this does not name are the upstream's to judge."""
    if not isinstance(message, dict):
        raise InvalidParameter(f"'{param}' must be an object.", param=param)
    role = message.get("role")
    if role not in ROLES:
        raise InvalidParameter(f"'{param}.role' must be one of {', '.join(ROLES)}.", param=f"{param}.role")
    content = message.get("content")
    if content is None:
        if role not in ("assistant",):
            raise InvalidParameter(
                f"'{param}.content' is required for a {role} message.", param=f"{param}.content"
            )
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                part_param = f"{param}.content[{index}]"
                raise InvalidParameter(
                    f"'{part_param}' must be a content part with a 'type'.", param=part_param
                )
    elif not isinstance(content, str):
        raise InvalidParameter(
            f"'{param}.content' must be a string or a list of content parts.", param=f"{param}.content"
        )
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise InvalidParameter(
            f"'{param}.tool_call_id' must name the tool call this answers.", param=f"{param}.tool_call_id"
        )
    calls = message.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(isinstance(call, dict) for call in calls)):
        raise InvalidParameter(
            f"'{param}.tool_calls' must be a list of tool calls.", param=f"{param}.tool_calls"
        )
    if message.get("name") is not None and not isinstance(message["name"], str):
        raise InvalidParameter(f"'{param}.name' must be a string.", param=f"{param}.name")


def _without_media(messages: list[WireMessage]) -> tuple[list[WireMessage], int]:
    """The messages with each media part's payload left out, and how many such parts there are."""
    sized: list[WireMessage] = []
    count = 0
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list) or not any(part["type"] in MEDIA_PARTS for part in content):
            sized.append(message)
            continue
        parts = []
        for part in content:
            if part["type"] in MEDIA_PARTS:
                count += 1
                part = {"type": part["type"]}
            parts.append(part)
        sized.append({**message, "content": parts})
    return sized, count


def _max_tokens(body: dict) -> int | None:
    """``max_completion_tokens`` (or the older ``max_tokens``); the services cap it at ``LLM_MAX_TOKENS``."""
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(f"'{name}' must be a positive integer.", param=name)
    return value


def _n(body: dict) -> int:
    value = body.get("n")
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= settings.V1_MAX_N:
        raise InvalidParameter(f"'n' must be an integer from 1 to {settings.V1_MAX_N}.", param="n")
    return value


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    #: Forwarded as sent: ``input``, ``encoding_format``, ``dimensions``, ``user``…
    options: dict[str, Any]
    #: The most prompt tokens ``input`` can be: one a byte of text, one a token id given as such.
    tokens_bound: int


def embedding_request(body: Any) -> EmbeddingRequest:
    """The request of ``POST /v1/embeddings``: ``input`` a string, strings, token ids, or lists of them."""
    if not isinstance(body, dict):
        raise InvalidParameter("The body must be a JSON object.", param=None)
    model = _model(body)
    items = body.get("input")
    items = [items] if isinstance(items, str) or _token_ids(items) else items
    if not isinstance(items, list) or not items:
        raise InvalidParameter("'input' must be a string, a list of strings, or token ids.", param="input")
    bound = 0
    for index, item in enumerate(items):
        if isinstance(item, str):
            bound += utf8_size(item, param=f"input[{index}]")
        elif _token_ids(item):
            bound += len(item)
        else:
            raise InvalidParameter(
                f"'input[{index}]' must be a string or a list of token ids.", param=f"input[{index}]"
            )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise InvalidParameter("'dimensions' must be a positive integer.", param="dimensions")
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidParameter("'encoding_format' must be float or base64.", param="encoding_format")
    options = {name: value for name, value in body.items() if name != "model"}
    utf8_size(options, param=None)
    return EmbeddingRequest(model=model, options=options, tokens_bound=bound)


def _token_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    )


# --- OpenAI's documented parameters, checked as OpenAI documents them ------------------------


def _number(low: float, high: float) -> Callable[[Any, str], None]:
    def check(value: Any, name: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise InvalidParameter(f"'{name}' must be a number from {low} to {high}.", param=name)

    return check


def _of_type(kind: type | tuple[type, ...], described: str) -> Callable[[Any, str], None]:
    def check(value: Any, name: str) -> None:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise InvalidParameter(f"'{name}' must be {described}.", param=name)
        if not isinstance(value, kind):
            raise InvalidParameter(f"'{name}' must be {described}.", param=name)

    return check


def _stop(value: Any, name: str) -> None:
    sequences = [value] if isinstance(value, str) else value
    if not isinstance(sequences, list) or len(sequences) > MAX_STOP_SEQUENCES:
        raise InvalidParameter(
            f"'stop' must be a string or a list of at most {MAX_STOP_SEQUENCES} strings.", param=name
        )
    if not all(isinstance(item, str) for item in sequences):
        raise InvalidParameter("'stop' must hold only strings.", param=name)


def _tools(value: Any, name: str) -> None:
    if not isinstance(value, list):
        raise InvalidParameter("'tools' must be a list.", param=name)
    for index, tool in enumerate(value):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidParameter(f"'{param}' must be an object with a 'type'.", param=param)
        if tool["type"] == "function":
            function = tool.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidParameter(
                    f"'{param}.function.name' must be a string.", param=f"{param}.function.name"
                )
            if function.get("parameters") is not None and not isinstance(function["parameters"], dict):
                raise InvalidParameter(
                    f"'{param}.function.parameters' must be a JSON schema object.",
                    param=f"{param}.function.parameters",
                )


def _tool_choice(value: Any, name: str) -> None:
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise InvalidParameter("'tool_choice' must be none, auto, required or an object.", param=name)
    elif not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise InvalidParameter("'tool_choice' must be none, auto, required or an object.", param=name)


def _response_format(value: Any, name: str) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise InvalidParameter(
            "'response_format.type' must be text, json_object or json_schema.", param=f"{name}.type"
        )
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise InvalidParameter(
                "'response_format.json_schema' must be an object with a 'name'.", param=f"{name}.json_schema"
            )


def _logit_bias(value: Any, name: str) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(bias, int | float) and not isinstance(bias, bool) and -100 <= bias <= 100
        for bias in value.values()
    ):
        raise InvalidParameter("'logit_bias' must map token ids to numbers from -100 to 100.", param=name)


def _top_logprobs(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise InvalidParameter("'top_logprobs' must be an integer from 0 to 20.", param=name)


def _metadata(value: Any, name: str) -> None:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise InvalidParameter("'metadata' must map names to strings.", param=name)


FORWARDED_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "temperature": _number(0.0, 2.0),
    "top_p": _number(0.0, 1.0),
    "presence_penalty": _number(-2.0, 2.0),
    "frequency_penalty": _number(-2.0, 2.0),
    "seed": _of_type(int, "an integer"),
    "user": _of_type(str, "a string"),
    "stop": _stop,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _of_type(bool, "true or false"),
    "response_format": _response_format,
    "logprobs": _of_type(bool, "true or false"),
    "top_logprobs": _top_logprobs,
    "logit_bias": _logit_bias,
    "reasoning_effort": _of_type(str, "a string"),
    "metadata": _metadata,
    "store": _of_type(bool, "true or false"),
    "service_tier": _of_type(str, "a string"),
    "modalities": _of_type(list, "a list"),
    "prediction": _of_type(dict, "an object"),
}


# --- answers -----------------------------------------------------------------------------


def completion_id(record_id: Any) -> str:
    return f"chatcmpl-{getattr(record_id, 'hex', record_id)}"


def usage_json(usage, *, cost: int) -> dict[str, int]:
    """OpenAI's ``usage``, with ``cost``: the credits charged."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "cost": cost,
    }


def chunk_json(*, record_id, model: str, created: int, choices: list) -> dict[str, Any]:
    """A ``chat.completion.chunk`` of Parley's own (the usage chunk's frame, a cut reply's end)."""
    return {
        "id": completion_id(record_id),
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def model_json(*, model_id: str, created_at, priced) -> dict[str, Any]:
    """OpenAI's model object (a category by its slug, or a catalogue model by its id) with Parley's
    prices, those of the catalogue model ``priced``: credits per 1,000 tokens, as decimal strings
    (exact, as the ledger computes with them)."""
    return {
        "id": model_id,
        "object": "model",
        "created": int(created_at.timestamp()),
        "owned_by": "parley",
        "pricing": {
            "unit": "credits per 1,000 tokens",
            "prompt": _decimal(priced.prompt_price),
            "completion": _decimal(priced.completion_price),
        },
    }


def _decimal(value) -> str:
    """``1.5000`` as ``1.5``, ``2.0000`` as ``2``: no trailing zeros, never an exponent."""
    return format(Decimal(value).normalize(), "f")


# Parley's error codes as OpenAI's clients know them: (OpenAI's code, its type).
_OPENAI_ERRORS = {
    "not_authenticated": ("invalid_api_key", "invalid_request_error"),
    "token_not_valid": ("invalid_api_key", "invalid_request_error"),
    "permission_denied": ("permission_denied", "invalid_request_error"),
    "model_not_found": ("model_not_found", "invalid_request_error"),
    "model_not_allowed": ("model_not_allowed", "invalid_request_error"),
    "not_found": ("not_found", "invalid_request_error"),
    "validation_error": ("invalid_request_error", "invalid_request_error"),
    "unsupported_parameter": ("unsupported_parameter", "invalid_request_error"),
    "unsupported_media_type": ("invalid_request_error", "invalid_request_error"),
    "payload_too_large": ("invalid_request_error", "invalid_request_error"),
    "method_not_allowed": ("invalid_request_error", "invalid_request_error"),
    "insufficient_funds": ("insufficient_quota", "insufficient_quota"),
    "spend_cap_reached": ("spend_cap_reached", "insufficient_quota"),
    "throttled": ("rate_limit_exceeded", "requests"),
    "too_many_replies": ("rate_limit_exceeded", "requests"),
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


def created_now() -> int:
    return int(time.time())
