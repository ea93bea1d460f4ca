"""The fake model's mind: what the ``echo`` provider and the fake OpenAI upstream answer.

Real clients (the ``openai`` SDK, pydantic-ai, instructor, the OpenAI Agents SDK, LangChain, Open
WebUI) drive a model through tool calls, JSON schemas, ``n`` choices and logprobs. A fake that only
echoed text would fail them at the first step, so these pure functions decide, deterministically,
an answer each of them accepts, offline:

- a tool call when ``tool_choice`` is ``"required"`` or names a function, or (``"auto"`` or absent)
  when the last user message names an offered tool; never with ``"none"``. A tool result is
  answered in text that carries it (``Echo: <result>``), so a test can see the tool's output reach
  the final answer and an agent's loop ends; unless the request still demands a tool it has not
  called yet (pydantic-ai's output tool), which is then called with the result in its arguments;
- the arguments, or the content under a ``json_schema`` response format, generated from the JSON
  schema (:func:`value_for`); under ``json_object``, from the largest JSON schema written in the
  messages (how instructor's JSON mode and pydantic-ai's prompted output ask), else
  ``{"echo": <last user message>}``;
- otherwise ``Echo: <last user message>``.

The whole text of a choice is capped at ``max_tokens`` by the estimate rule of
:mod:`chats.llm.base` (finish reason ``"length"``), and :class:`Reply` renders it as OpenAI does:
``chat.completion.chunk`` objects (word by word, tool call arguments in pieces) or the choices of
one ``chat.completion``. :func:`embeddings` answers ``POST /embeddings`` with vectors derived from
each input's hash. Nothing here touches Django, so the fake upstream runs in any process.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .base import (
    BYTES_PER_TOKEN,
    Chunk,
    WireMessage,
    estimate_prompt_tokens,
    estimate_tokens,
    message_text,
)
from .schema_values import value_for

__all__ = [
    "DEFAULT_DIMENSIONS",
    "MAX_CHOICES",
    "MAX_DIMENSIONS",
    "MAX_EMBEDDING_INPUTS",
    "MAX_TOP_LOGPROBS",
    "InvalidRequest",
    "Reply",
    "ToolCall",
    "echo_reply",
    "embeddings",
    "last_user_text",
    "prompt_tokens",
    "reply",
    "schema_in_messages",
    "split_chunks",
    "truncate_to_tokens",
    "value_for",
]

#: Length of the vectors :func:`embeddings` returns when the request names no ``dimensions``.
DEFAULT_DIMENSIONS = 8
#: OpenAI's own limits, kept so that the offline provider cannot be asked for unbounded work.
MAX_CHOICES = 128
MAX_TOP_LOGPROBS = 20
MAX_DIMENSIONS = 3072
MAX_EMBEDDING_INPUTS = 2048

_WORDISH = re.compile(r"\s*\S+|\s+")
#: Characters per streamed piece of tool call arguments: OpenAI streams them a few tokens at a time.
_ARGUMENT_PIECE = 8
_SCHEMA_TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


class InvalidRequest(ValueError):
    """A request OpenAI would refuse with a 400; ``error`` is its ``error`` object, in OpenAI's shape."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    #: JSON text, as a model writes it (possibly cut short by ``max_tokens``).
    arguments: str


@dataclass(frozen=True)
class Reply:
    """What each of the ``n`` choices of a reply says (the same in all): text or one tool call."""

    #: The text as streamed, piece by piece (none for a tool call).
    pieces: tuple[str, ...]
    tool_call: ToolCall | None
    finish_reason: str
    n: int = 1
    #: ``None``: the request asked for no logprobs; else how many alternatives each token lists.
    top_logprobs: int | None = None
    #: The default answer, ``Echo: <last user message>``: no tool, response format or tool result
    #: shaped it (so the fake upstream may say its scenario's reply instead).
    plain: bool = False

    @property
    def content(self) -> str | None:
        return None if self.tool_call is not None else "".join(self.pieces)

    @property
    def generated(self) -> str:
        """One choice's generated text, as :func:`chats.llm.base.chunk_generated` counts it."""
        if self.tool_call is not None:
            return self.tool_call.name + self.tool_call.arguments
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        """Every choice's tokens by the estimate rule: what a provider reports for the reply."""
        return self.n * estimate_tokens(self.generated)

    def stream_chunks(self, *, completion_id: str, created: int, model: str) -> list[Chunk]:
        """The reply as OpenAI streams it: each choice's role chunk, then its pieces (the choices
        taking turns), then each choice's finish reason; one choice per chunk."""
        per_choice = [self._streamed_choices(index) for index in range(self.n)]
        head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        return [{**head, "choices": [choice]} for turn in zip(*per_choice, strict=True) for choice in turn]

    def completion_choices(self) -> list[dict[str, Any]]:
        """The ``choices`` of a non-streamed ``chat.completion``."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_call is not None:
            message["tool_calls"] = [_call_json(self.tool_call, self.tool_call.arguments)]
        logprobs = None
        if self.top_logprobs is not None and self.tool_call is None:
            tokens = [_token_logprob(piece, self.top_logprobs) for piece in self.pieces]
            logprobs = {"content": tokens, "refusal": None}
        return [
            {"index": index, "message": message, "logprobs": logprobs, "finish_reason": self.finish_reason}
            for index in range(self.n)
        ]

    def _streamed_choices(self, index: int) -> list[dict[str, Any]]:
        opening = {"role": "assistant", "content": "" if self.tool_call is None else None, "refusal": None}
        deltas = [(opening, None)]
        if self.tool_call is not None:
            deltas += [({"tool_calls": [piece]}, None) for piece in _call_pieces(self.tool_call)]
        else:
            deltas += [({"content": piece}, self._logprobs(piece)) for piece in self.pieces]
        choices = [_choice(index, delta, logprobs) for delta, logprobs in deltas]
        return [*choices, _choice(index, {}, None, self.finish_reason)]

    def _logprobs(self, piece: str) -> dict[str, Any] | None:
        if self.top_logprobs is None:
            return None
        return {"content": [_token_logprob(piece, self.top_logprobs)], "refusal": None}


def reply(messages: list[WireMessage], options: Mapping[str, Any], *, max_tokens: int | None = None) -> Reply:
    """The answer to a chat request (``options``: its parameters besides messages), each choice
    cut to ``max_tokens`` estimated tokens (``None``: uncut). Raises :class:`InvalidRequest` for
    an ``n`` or ``top_logprobs`` beyond OpenAI's limits."""
    n = _bounded_option(options, "n", default=1, low=1, high=MAX_CHOICES)
    top_logprobs = _bounded_option(options, "top_logprobs", default=0, low=0, high=MAX_TOP_LOGPROBS)
    content, call, plain = _decide(messages, options)
    finish_reason = "stop" if call is None else "tool_calls"
    if max_tokens is not None:
        if call is not None:
            # The name counts too: the budget is what the model generated, as chunk_generated sees it.
            kept = truncate_to_tokens(call.name + call.arguments, max_tokens)[len(call.name) :]
            truncated, call = kept != call.arguments, ToolCall(call.id, call.name, kept)
        else:
            kept = truncate_to_tokens(content, max_tokens)
            truncated, content = kept != content, kept
        finish_reason = "length" if truncated else finish_reason
    return Reply(
        pieces=() if call is not None else tuple(split_chunks(content)),
        tool_call=call,
        finish_reason=finish_reason,
        n=n,
        top_logprobs=top_logprobs if options.get("logprobs") else None,
        plain=plain,
    )


def prompt_tokens(messages: list[WireMessage], options: Mapping[str, Any]) -> int:
    """The prompt by the estimate rule, plus the offered tools' JSON (the model reads it too)."""
    tools = options.get("tools")
    return estimate_prompt_tokens(messages) + (estimate_tokens(json.dumps(tools)) if tools else 0)


def echo_reply(text: str) -> str:
    return f"Echo: {text}" if text else "Echo."


def last_user_text(messages: list[WireMessage]) -> str:
    """The text of the last user message (its text parts, for a multimodal one)."""
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def split_chunks(text: str) -> list[str]:
    """Word-ish pieces (each word with the whitespace before it) whose concatenation is ``text``."""
    return _WORDISH.findall(text)


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` (whole characters) within ``max_tokens`` estimated tokens."""
    encoded = text.encode("utf-8")
    limit = max(0, max_tokens) * BYTES_PER_TOKEN
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def schema_in_messages(messages: list[WireMessage]) -> dict[str, Any] | None:
    """The largest JSON schema written out in the messages' text, if any.

    Clients that ask for JSON without ``json_schema`` (instructor's JSON mode, pydantic-ai's
    prompted output) put the schema in the prompt; answering to it is what lets them parse.
    """
    best: dict[str, Any] | None = None
    best_size = 0
    decoder = json.JSONDecoder()
    for message in messages:
        text = message_text(message)
        start = text.find("{")
        while start != -1:
            try:
                value, end = decoder.raw_decode(text, start)
            except ValueError:
                end = start + 1
            else:
                if not _looks_like_schema(value):
                    end = start + 1  # it may hold a schema further in
                elif end - start > best_size:
                    best, best_size = value, end - start
            start = text.find("{", end)
    return best


def embeddings(model: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's ``POST /embeddings`` answer: a unit vector per input, derived from its hash.

    ``encoding_format`` ``"base64"`` (what the ``openai`` SDK asks for by default) packs the same
    float32 values little-endian, as OpenAI does; ``"float"`` lists them. Raises
    :class:`InvalidRequest` for what OpenAI refuses.
    """
    inputs = _embedding_inputs(options.get("input"))
    dimensions = _bounded_option(
        options, "dimensions", default=DEFAULT_DIMENSIONS, low=1, high=MAX_DIMENSIONS
    )
    encoding = options.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    data = [
        {"object": "embedding", "index": index, "embedding": _encoded(_vector(item, dimensions), encoding)}
        for index, item in enumerate(inputs)
    ]
    tokens = sum(estimate_tokens(item) if isinstance(item, str) else len(item) for item in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


# --- deciding -------------------------------------------------------------------------------------


def _decide(messages: list[WireMessage], options: Mapping[str, Any]) -> tuple[str, ToolCall | None, bool]:
    """The whole answer of one choice: its text, or the tool it calls; and whether it is plain."""
    results = _tool_results(messages)
    if results is None:
        subject, tool = last_user_text(messages), _chosen_tool(messages, options)
    else:
        subject, tool = results, _next_tool(messages, options)
    if tool is not None:
        return "", _call(tool, subject, turn=len(messages)), False
    json_format = _response_format_kind(options) in ("json_schema", "json_object")
    return _text(subject, messages, options), None, results is None and not json_format


def _tool_results(messages: list[WireMessage]) -> str | None:
    """The text of the tool results that end the conversation; ``None`` unless it ends with one."""
    trailing = list(itertools.takewhile(lambda m: m.get("role") == "tool", reversed(messages)))
    if not trailing:
        return None
    return "\n".join(message_text(message) for message in reversed(trailing))


def _chosen_tool(messages: list[WireMessage], options: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The function to call (its ``function`` object) in answer to a user, or ``None`` for text."""
    choice = options.get("tool_choice")
    if choice == "none":
        return None
    demanded = _demanded_functions(options)
    if isinstance(choice, Mapping):
        return next(iter(demanded), None)
    text = last_user_text(messages)
    named = next((f for f in _offered_functions(options) if _mentions(text, f["name"])), None)
    return named or next(iter(demanded), None)


def _next_tool(messages: list[WireMessage], options: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """After tool results: ``None`` (text) unless the request demands a call, then a demanded tool
    not called yet in the conversation.

    Text is what ends an agent's loop; but a client that demands a tool (pydantic-ai's structured
    output sends ``required``, then expects its ``final_result`` tool after its function tools)
    breaks on text, so it gets the next tool it has not had, and text once it has had them all.
    """
    called = {
        (call.get("function") or {}).get("name")
        for message in messages
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
        if isinstance(call, Mapping)
    }
    return next((f for f in _demanded_functions(options) if f["name"] not in called), None)


def _demanded_functions(options: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The functions ``tool_choice`` obliges the model to pick from: the one it names, all offered
    for ``required``, none otherwise."""
    choice = options.get("tool_choice")
    functions = _offered_functions(options)
    if choice == "required":
        return functions
    if not isinstance(choice, Mapping):
        return []
    name = (choice.get("function") or {}).get("name")
    if not isinstance(name, str):
        return []
    return [next((function for function in functions if function["name"] == name), {"name": name})]


def _offered_functions(options: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tools = options.get("tools")
    functions = [tool.get("function") for tool in tools or () if isinstance(tool, Mapping)]
    return [f for f in functions if isinstance(f, Mapping) and isinstance(f.get("name"), str)]


def _mentions(text: str, name: str) -> bool:
    """Whether ``text`` names the tool, as written or with its underscores as spaces."""
    spellings = {name, re.sub(r"[_-]+", " ", name)}
    return any(re.search(rf"(?<!\w){re.escape(s)}(?!\w)", text, re.IGNORECASE) for s in spellings)


def _call(function: Mapping[str, Any], subject: str, *, turn: int) -> ToolCall:
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = _json(value_for(parameters, text=subject))
    name = function["name"]
    # Distinct per turn, the same on every run.
    digest = hashlib.sha256(f"{turn}:{name}:{arguments}".encode()).hexdigest()
    return ToolCall(id=f"call_{digest[:24]}", name=name, arguments=arguments)


def _text(subject: str, messages: list[WireMessage], options: Mapping[str, Any]) -> str:
    """The text answer about ``subject``, in the shape the response format asks for."""
    kind = _response_format_kind(options)
    if kind == "json_schema":
        schema = (options["response_format"].get("json_schema") or {}).get("schema") or {}
        return _json(value_for(schema, text=subject))
    if kind == "json_object":
        schema = schema_in_messages(messages)
        return _json(value_for(schema, text=subject) if schema is not None else {"echo": subject})
    return echo_reply(subject)


def _response_format_kind(options: Mapping[str, Any]) -> str | None:
    response_format = options.get("response_format")
    return response_format.get("type") if isinstance(response_format, Mapping) else None


def _bounded_option(options: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    """An integer option (``default`` when absent or null), refused outside ``low``..``high``."""
    value = options.get(name)
    if value is None:
        return default
    if not _is_integer(value) or not low <= value <= high:
        raise InvalidRequest(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _looks_like_schema(value: Any) -> bool:
    """Whether a JSON value reads as a schema (pydantic's recursive models give only a ``$ref``)."""
    return isinstance(value, dict) and (
        isinstance(value.get("properties"), dict)
        or value.get("type") in _SCHEMA_TYPES
        or isinstance(value.get("$ref"), str)
        or isinstance(value.get("anyOf"), list)
    )


# --- rendering ------------------------------------------------------------------------------------


def _choice(
    index: int, delta: dict[str, Any], logprobs: dict[str, Any] | None, finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


def _call_json(call: ToolCall, arguments: str) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


def _call_pieces(call: ToolCall) -> Iterator[dict[str, Any]]:
    """The tool call deltas: id, name and empty arguments first, then the arguments in pieces."""
    yield {"index": 0, **_call_json(call, "")}
    for start in range(0, len(call.arguments), _ARGUMENT_PIECE):
        piece = call.arguments[start : start + _ARGUMENT_PIECE]
        yield {"index": 0, "function": {"arguments": piece}}


def _token_logprob(token: str, top: int) -> dict[str, Any]:
    """A deterministic logprob for ``token`` (a likely one: between -0.1 and 0) and ``top``
    alternatives, the token itself first, the others ever less likely."""
    logprob = -round(int(hashlib.sha256(token.encode()).hexdigest()[:4], 16) / 655350, 6)
    alternatives = [token, *(f"alt{rank}" for rank in range(1, top))][:top]
    return {
        "token": token,
        "logprob": logprob,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": option, "logprob": logprob - rank, "bytes": list(option.encode())}
            for rank, option in enumerate(alternatives)
        ],
    }


# --- embeddings -----------------------------------------------------------------------------------


def _embedding_inputs(raw: Any) -> list[str | list[int]]:
    """The inputs one by one: texts, or token id lists; as OpenAI accepts them."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty array.", param="input")
    if all(_is_integer(item) for item in raw):
        raw = [raw]
    if len(raw) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequest(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", param="input")
    for item in raw:
        is_text = isinstance(item, str) and item != ""
        is_tokens = isinstance(item, list) and item and all(_is_integer(token) for token in item)
        if not (is_text or is_tokens):
            raise InvalidRequest("Every 'input' must be a non-empty string or token array.", param="input")
    return raw


def _vector(item: str | list[int], dimensions: int) -> tuple[float, ...]:
    """A unit vector of float32 values, the same for the same input, unrelated otherwise."""
    key = item if isinstance(item, str) else "tokens:" + ",".join(map(str, item))
    raw = []
    for index in range(dimensions):
        digest = hashlib.sha256(f"{index}:{key}".encode()).digest()
        raw.append(int.from_bytes(digest[:8], "big") / 2**63 - 1)
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Rounded to float32, so "float" and "base64" give exactly the same numbers.
    return struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(x / norm for x in raw)))


def _encoded(vector: tuple[float, ...], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)
