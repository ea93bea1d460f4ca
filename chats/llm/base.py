"""The streaming interface every LLM provider implements.

A provider turns a prompt (a list of :class:`ChatMessage`) into an
:class:`LLMStream`: an async iterator of text deltas. When the iteration ends
normally, ``stream.usage`` holds the token counts the provider reported, or
``None`` when it reported none (a cut stream, a server that ignores
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
- a prompt: each message costs its text plus ``MESSAGE_OVERHEAD_TOKENS`` (4:
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

    def as_dict(self) -> dict[str, str]:
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
    ) -> None:
        super().__init__(message, details=details)
        if status_code is not None:
            self.status_code = status_code


class LLMStream(ABC):
    """One reply being generated: ``async for delta in stream`` yields text pieces.

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
    async def __anext__(self) -> str:
        """The next non-empty text delta; ``StopAsyncIteration`` at the end."""

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
        messages: list[ChatMessage],
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
    ) -> LLMStream:
        """Start a reply; raises :class:`LLMUnavailable` if it cannot start.

        ``options`` are sampling parameters in OpenAI's names (``temperature``,
        ``top_p``, ``stop``, ``seed``…), passed through by ``/v1/``; a provider
        that has no use for them ignores them.
        """


def estimate_tokens(text: str) -> int:
    """Approximate tokens of ``text``: ceil(UTF-8 bytes / 4); 0 only for ''."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def estimate_message_tokens(message: ChatMessage) -> int:
    """One message's share of a prompt: its text plus the per-message overhead."""
    return MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message.content)


def estimate_prompt_tokens(messages: Iterable[ChatMessage]) -> int:
    """Approximate prompt tokens: every message with its overhead, plus the reply priming."""
    return REPLY_PRIMING_TOKENS + sum(estimate_message_tokens(message) for message in messages)


def estimate_usage(messages: Iterable[ChatMessage], completion: str) -> Usage:
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
