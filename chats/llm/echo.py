"""The offline provider: answers ``Echo: <last user message>``, deterministically.

It is the default, so a fresh install can chat with no network and no key,
and the API tests run without an upstream. The reply is streamed in word-ish
chunks (each word with the whitespace before it), optionally ``delay``
seconds apart, and capped at ``max_tokens`` by the estimate rule of
:mod:`chats.llm.base`. Its usage is its own exact count by that rule, so it
is reported as not estimated.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from .base import (
    BYTES_PER_TOKEN,
    ChatMessage,
    LLMProvider,
    LLMStream,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)

_CHUNK = re.compile(r"\s*\S+|\s+")


def echo_reply(messages: list[ChatMessage]) -> str:
    last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return f"Echo: {last_user}" if last_user else "Echo."


def split_chunks(text: str) -> list[str]:
    """Word-ish pieces whose concatenation is ``text``."""
    return _CHUNK.findall(text)


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` (whole characters) within ``max_tokens`` estimated tokens."""
    encoded = text.encode("utf-8")
    limit = max_tokens * BYTES_PER_TOKEN
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


class EchoStream(LLMStream):
    def __init__(self, *, chunks: list[str], usage: Usage, finish_reason: str, delay: float) -> None:
        self._chunks = iter(chunks)
        self._final_usage = usage
        self._final_finish_reason = finish_reason
        self._delay = delay
        self._closed = False

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        chunk = next(self._chunks, None)
        if chunk is None:
            self._closed = True
            self.usage = self._final_usage
            self.finish_reason = self._final_finish_reason
            raise StopAsyncIteration
        if self._delay:
            await asyncio.sleep(self._delay)
        return chunk

    async def aclose(self) -> None:
        self._closed = True


class EchoProvider(LLMProvider):
    name = "echo"

    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay

    async def stream(
        self,
        *,
        messages: list[ChatMessage],
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
    ) -> LLMStream:
        full = echo_reply(messages)
        reply = truncate_to_tokens(full, max_tokens)
        usage = Usage(
            prompt_tokens=estimate_prompt_tokens(messages),
            completion_tokens=estimate_tokens(reply),
        )
        return EchoStream(
            chunks=split_chunks(reply),
            usage=usage,
            finish_reason="stop" if reply == full else "length",
            delay=self.delay,
        )
