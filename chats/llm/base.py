"""The streaming interface every LLM provider implements.

A provider turns a prompt (messages in OpenAI's wire format, and the rest of
the request's parameters as ``options``) into an :class:`LLMStream`: an async
iterator of ``chat.completion.chunk`` objects as the model produced them
(text, tool call pieces, refusals, logprobs and finish reasons of every
choice), so that ``/v1/`` can forward them as sent and the chat API can read
their text (:func:`chunk_text`). When the iteration ends normally,
``stream.usage`` holds the token counts the provider reported, or ``None``
when it reported none (a cut stream, a server that ignores
``stream_options``); the caller then estimates with the functions below.
Whoever opens a stream closes it with ``await stream.aclose()`` (or
``async with``) on every path, above all when the client disconnects: that is
what closes the upstream HTTP connection so the model stops generating.

Failures are one exception, :class:`LLMUnavailable`: raised by
``provider.stream()`` when the request fails before the reply starts, and by
the iteration when the reply breaks off midway (after the deltas already
yielded, which the caller keeps).

Token estimate rule (used only when a provider reports no usage):

- text: ``ceil(len(text.encode("utf-8")) / 4)`` tokens, so the empty string is
  0 and any non-empty text at least 1. Four bytes a token is the usual
  figure for English with GPT-style BPE tokenizers; it is an approximation,
  not a bound (code, digits and CJK text run higher, as real tokenizers give
  about one token per 3-byte CJK character).
- a prompt: each message costs its text (:func:`message_text`) plus ``MESSAGE_OVERHEAD_TOKENS`` (4:
  role and delimiters), and the whole prompt ``REPLY_PRIMING_TOKENS`` (3: the
  assistant header the model is primed with), after OpenAI's published
  counting recipe for chat models.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from core.errors import DomainError

Role = Literal["system", "user", "assistant"]

#: A chat message as OpenAI's API has it: ``role``, ``content`` (a string, a list of parts, or
#: None beside ``tool_calls``), and any other field (``name``, ``tool_calls``, ``tool_call_id``).
WireMessage = dict[str, Any]

#: One ``chat.completion.chunk`` as the upstream sent it, with a non-empty ``choices``.
Chunk = dict[str, Any]

BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
REPLY_PRIMING_TOKENS = 3


@dataclass(frozen=True)
class Usage:
    """Tokens one reply used; ``estimated`` when counted here rather than by the provider."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> WireMessage:
        return {"role": self.role, "content": self.content}


class LLMUnavailable(DomainError):
    """The language model could not produce (the rest of) a reply."""

    code = "llm_unavailable"
    status_code = 502
    default_message = "The language model is unavailable. Please try again."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, details=details)
        if status_code is not None:
            self.status_code = status_code
        #: Seconds the upstream asked to wait (its ``Retry-After``), if it said.
        self.retry_after = retry_after

    @property
    def upstream_status(self) -> int | None:
        """The HTTP status the upstream answered, if it answered one."""
        return self.details.get("upstream_status")


class UpstreamRefused(LLMUnavailable):
    """The upstream refused the request itself (a 4xx, or 429).

    To a chat reply's user it is the model's failure, told as any other (the
    request was Parley's); ``/v1/`` passes ``error``, the upstream's own
    OpenAI-shaped object, on with ``upstream_status``, so that a program
    learns what to change in what it sent (free of charge).
    """

    def __init__(
        self, *, upstream_status: int, error: dict[str, Any], retry_after: float | None = None
    ) -> None:
        super().__init__(
            f"The language model service answered with an error (HTTP {upstream_status}).",
            details={"reason": "upstream_status", "upstream_status": upstream_status},
            # Rate-limited upstream: a temporary condition, say so.
            status_code=503 if upstream_status == 429 else 502,
            retry_after=retry_after,
        )
        self.error = error


class LLMStream(ABC):
    """One reply being generated: ``async for chunk in stream`` yields its chunks.

    Each is a ``chat.completion.chunk`` with a non-empty ``choices`` (the usage
    chunk is read into ``usage``, not yielded).

    ``usage`` is the provider's reported usage, set once the iteration has
    ended normally (``None`` until then, and ``None`` if none was reported).
    ``finish_reason`` is the provider's reason (``"stop"``, ``"length"``…) when
    it gave one. ``aclose()`` releases the upstream connection; it is
    idempotent and safe to call at any point, including from a task being
    cancelled. After ``aclose()`` the iteration simply ends.
    """

    usage: Usage | None = None
    finish_reason: str | None = None

    def __aiter__(self) -> Self:
        return self

    @abstractmethod
    async def __anext__(self) -> Chunk:
        """The next chunk that has choices; ``StopAsyncIteration`` at the end."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the upstream connection (idempotent)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LLMProvider(ABC):
    """Something that streams chat replies."""

    name: str = ""

    @abstractmethod
    async def stream(
        self,
        *,
        messages: list[WireMessage],
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
    ) -> LLMStream:
        """Start a reply; raises :class:`LLMUnavailable` if it cannot start.

        ``options`` are the request's other parameters in OpenAI's names
        (``tools``, ``tool_choice``, ``response_format``, ``n``, ``logprobs``,
        ``temperature``, ``stop``…, and keys OpenAI does not know), forwarded
        by ``/v1/`` as the client sent them.
        """

    @abstractmethod
    async def embeddings(self, *, model: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """OpenAI's ``POST /embeddings`` answer (a ``list`` of ``embedding`` objects and ``usage``)
        for ``options`` (``input``, ``encoding_format``, ``dimensions``…, as the client sent them);
        raises :class:`LLMUnavailable`."""


def estimate_tokens(text: str) -> int:
    """Approximate tokens of ``text``: ceil(UTF-8 bytes / 4); 0 only for ''."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def message_text(message: Mapping[str, Any]) -> str:
    """The text a wire message carries: its content (text parts one per line), and the names and
    arguments of its tool calls."""
    content = message.get("content")
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        content = "\n".join(text for text in texts if isinstance(text, str) and text)
    calls = message.get("tool_calls") or ()
    arguments = [
        f"{call.get('function', {}).get('name', '')}{call.get('function', {}).get('arguments', '')}"
        for call in calls
        if isinstance(call, dict)
    ]
    return "".join([content if isinstance(content, str) else "", *arguments])


def estimate_message_tokens(message: ChatMessage | Mapping[str, Any]) -> int:
    """One message's share of a prompt: its text plus the per-message overhead."""
    text = message.content if isinstance(message, ChatMessage) else message_text(message)
    return MESSAGE_OVERHEAD_TOKENS + estimate_tokens(text)


def estimate_prompt_tokens(messages: Iterable[ChatMessage | Mapping[str, Any]]) -> int:
    """Approximate prompt tokens: every message with its overhead, plus the reply priming."""
    return REPLY_PRIMING_TOKENS + sum(estimate_message_tokens(message) for message in messages)


def chunk_text(chunk: Chunk) -> str:
    """The text a chunk adds to the first choice's content (what a chat reply stores)."""
    for choice in chunk["choices"]:
        if choice.get("index", 0) == 0:
            return (choice.get("delta") or {}).get("content") or ""
    return ""


def chunk_generated(chunk: Chunk) -> str:
    """Everything a chunk adds that the model generated, in every choice: content, refusal, tool
    call names and arguments (what bounds a reply and estimates its tokens)."""
    pieces = []
    for choice in chunk["choices"]:
        delta = choice.get("delta") or {}
        pieces.append(delta.get("content") or "")
        pieces.append(delta.get("refusal") or "")
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            pieces.append(function.get("name") or "")
            pieces.append(function.get("arguments") or "")
    return "".join(pieces)


def estimate_usage(messages: Iterable[ChatMessage | Mapping[str, Any]], completion: str) -> Usage:
    """A :class:`Usage` counted here, for a reply whose provider reported none.

    A reply cut before its first token produced nothing, and is charged nothing.
    """
    if not completion:
        return Usage(prompt_tokens=0, completion_tokens=0, estimated=True)
    return Usage(
        prompt_tokens=estimate_prompt_tokens(messages),
        completion_tokens=estimate_tokens(completion),
        estimated=True,
    )
