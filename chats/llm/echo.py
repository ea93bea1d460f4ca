"""The offline provider: a deterministic fake model, ``Echo: <last user message>`` by default.

It is the default, so a fresh install can chat with no network and no key,
and the API tests run without an upstream. What it answers is
:mod:`chats.llm.playalong`'s decision, so OpenAI's clients complete a round
trip against it: tool calls when asked for, JSON for a response format, ``n``
choices, logprobs, and embeddings. The reply is streamed as OpenAI streams it
(a role chunk, then the text in word-ish chunks, each word with the
whitespace before it, or a tool call's arguments in pieces, then the finish
reason), the generated chunks optionally ``delay`` seconds apart, each choice
capped at ``max_tokens`` by the estimate rule of :mod:`chats.llm.base`. Its
usage is its own exact count by that rule, so it is reported as not
estimated.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

from . import playalong
from .base import (
    Chunk,
    LLMProvider,
    LLMStream,
    UpstreamRefused,
    Usage,
    WireMessage,
    chunk_generated,
)


class EchoStream(LLMStream):
    def __init__(self, *, chunks: list[Chunk], usage: Usage, finish_reason: str, delay: float) -> None:
        self._chunks = iter(chunks)
        self._final_usage = usage
        self._final_finish_reason = finish_reason
        self._delay = delay
        self._closed = False

    async def __anext__(self) -> Chunk:
        if self._closed:
            raise StopAsyncIteration
        chunk = next(self._chunks, None)
        if chunk is None:
            self._closed = True
            self.usage = self._final_usage
            self.finish_reason = self._final_finish_reason
            raise StopAsyncIteration
        # The delay stands for generating: chunks that carry no output (role, finish) are free.
        if self._delay and chunk_generated(chunk):
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
        messages: list[WireMessage],
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
    ) -> LLMStream:
        options = options or {}
        try:
            reply = playalong.reply(messages, options, max_tokens=max_tokens)
        except playalong.InvalidRequest as exc:
            raise UpstreamRefused(upstream_status=400, error=exc.error) from exc
        chunks = reply.stream_chunks(
            completion_id=f"chatcmpl-echo-{uuid.uuid4().hex}", created=int(time.time()), model=model
        )
        usage = Usage(
            prompt_tokens=playalong.prompt_tokens(messages, options),
            completion_tokens=reply.completion_tokens,
        )
        return EchoStream(chunks=chunks, usage=usage, finish_reason=reply.finish_reason, delay=self.delay)

    async def embeddings(self, *, model: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Hash-derived vectors; an input OpenAI would refuse is refused as OpenAI does (a 400)."""
        try:
            return playalong.embeddings(model, options)
        except playalong.InvalidRequest as exc:
            raise UpstreamRefused(upstream_status=400, error=exc.error) from exc
