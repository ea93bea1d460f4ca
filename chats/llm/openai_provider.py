"""The ``openai`` provider: any OpenAI-compatible chat-completions server.

OpenAI itself, vLLM, Ollama, llama.cpp or a gateway, chosen by
``OPENAI_BASE_URL``, driven by the official ``openai`` package's
``AsyncOpenAI``: ``chat.completions`` with ``stream=True`` and
``stream_options={"include_usage": True}``, so the last chunk carries the
real token counts. The SDK sends the request (auth, retries, timeouts, error
statuses; through its generic ``post``, why: see :meth:`OpenAIProvider.stream`);
:class:`OpenAIStream` reads the event stream (why: see there).

One client per event loop and configuration. Building an ``AsyncOpenAI``
blocks the event loop while it loads its TLS context, too costly to repeat for
every reply, so clients are cached. But its connection pool belongs to the
event loop it first ran on, and a process can run several loops (the test
suite opens one per test, a thread may run its own), so the cache is keyed by
the running loop and by the settings that shape the client (key, URL,
timeout, retries).
Under uvicorn there is one loop, hence one client and one pool per process.
:func:`aclose_clients` closes the running loop's clients.

``LLM_TIMEOUT`` applies to connecting and to each read: a reply that stalls
for longer than that between two chunks fails with :class:`LLMUnavailable`.
``LLM_MAX_RETRIES`` retries connection errors, 408/409/429 and 5xx before
the stream starts; nothing is retried once tokens flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import openai
from django.conf import settings

from core.loops import PerLoop

from .base import Chunk, LLMProvider, LLMStream, LLMUnavailable, UpstreamRefused, Usage, WireMessage

logger = logging.getLogger(__name__)

# One uvicorn worker is meant to carry 1,000 concurrent streams; the openai
# default pool (1,000 connections) would make the last ones queue for a slot.
# Idle connections kept: the SDK's default. More is not free: the pool probes
# every idle connection each time a request starts or ends.
POOL_LIMITS = httpx2.Limits(max_connections=2048, max_keepalive_connections=100)

# After [DONE], how long to wait for the end of the body before giving up the connection.
_DRAIN_SECONDS = 0.1

# Everything that means "the upstream failed" rather than "our code is wrong".
_FAILURES: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    httpx2.StreamError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    ssl.SSLError,
    OSError,
    json.JSONDecodeError,
)


#: Local servers (vLLM, Ollama, llama.cpp) need no key, but the client insists on one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    base_url: str | None
    timeout: float
    max_retries: int

    @classmethod
    def from_settings(cls) -> ClientConfig:
        return cls(
            api_key=settings.OPENAI_API_KEY or NO_KEY,
            base_url=settings.OPENAI_BASE_URL or None,
            timeout=float(settings.LLM_TIMEOUT),
            max_retries=int(settings.LLM_MAX_RETRIES),
        )

    def build(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self.api_key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(limits=POOL_LIMITS),
        )


# Clients by event loop (their sockets belong to it), then by configuration.
_clients: PerLoop[dict[ClientConfig, openai.AsyncOpenAI]] = PerLoop(dict)


def get_client(config: ClientConfig | None = None) -> openai.AsyncOpenAI:
    """The ``AsyncOpenAI`` client for the running loop and ``config`` (by default the settings'
    provider); call it in a coroutine."""
    config = config or ClientConfig.from_settings()
    clients = _clients.get()
    if config not in clients:
        clients[config] = config.build()
    return clients[config]


async def aclose_clients() -> None:
    """Close and forget the running loop's clients (a test's loop, or a worker shutting down)."""
    for client in (_clients.pop() or {}).values():
        await client.close()


def _unavailable(exc: BaseException, *, midstream: bool) -> LLMUnavailable:
    """A client-safe :class:`LLMUnavailable` for an upstream failure; the detail goes to the log."""
    logger.warning("LLM upstream failed %s: %r", "mid-stream" if midstream else "before the stream", exc)
    if isinstance(exc, openai.APIStatusError):
        status, retry_after = exc.status_code, _retry_after(exc.response.headers)
        if 400 <= status < 500 and status not in (401, 403, 408, 409) and not midstream:
            # The request itself is at fault (or, for 429, too many of them): the client is told.
            return UpstreamRefused(
                upstream_status=status, error=_upstream_error(exc), retry_after=retry_after
            )
        return LLMUnavailable(
            f"The language model service answered with an error (HTTP {status}).",
            details={"reason": "upstream_status", "upstream_status": status},
            # Overloaded or rate-limited upstream: a temporary condition, say so.
            status_code=503 if status in (429, 503) else 502,
            retry_after=retry_after,
        )
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
        return LLMUnavailable(
            "The language model service did not answer in time.", details={"reason": "timeout"}
        )
    if isinstance(exc, openai.APIError) and not isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(
            "The language model service reported an error.", details={"reason": "upstream_error"}
        )
    if midstream:
        return LLMUnavailable(
            "The connection to the language model service broke off mid-reply.",
            details={"reason": "connection"},
        )
    return LLMUnavailable("Could not reach the language model service.", details={"reason": "connection"})


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asked to wait: ``retry-after-ms`` (OpenAI's), else ``Retry-After`` in
    seconds (an HTTP date is not worth parsing here: the cooldown's own length applies)."""
    for name, scale in (("retry-after-ms", 1000), ("retry-after", 1)):
        try:
            return max(float(headers[name]) / scale, 0.0)
        except (KeyError, ValueError):
            continue
    return None


def _upstream_error(exc: openai.APIStatusError) -> dict[str, Any]:
    """The upstream's ``error`` object, as OpenAI shapes it (``message``, ``type``, ``param``, ``code``)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return {
        "message": str(error.get("message") or exc.message),
        "type": error.get("type") or "invalid_request_error",
        "param": error.get("param"),
        "code": error.get("code"),
    }


class OpenAIStream(LLMStream):
    """The chunks of one ``chat.completions`` stream, usage from its final chunk.

    It reads the server-sent events itself (``data: {json}`` lines, then
    ``data: [DONE]``) from the SDK's streaming response instead of the SDK's
    ``AsyncStream``, which builds a pydantic model per chunk: a worker
    streaming a thousand replies spends its CPU precisely on that per-chunk
    work, so here it is one ``json.loads`` (docs/benchmarks.md).
    The request itself (auth, retries, timeouts, status errors) is still the
    SDK's.
    """

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        # The body's bytes as they come, split into events here: httpx's text and line decoders
        # would run in Python for every chunk.
        self._chunks = response.aiter_bytes()
        self._buffer = b""
        self._closed = False

    async def __anext__(self) -> Chunk:
        while not self._closed:
            try:
                data = await self._next_data()
            except _FAILURES as exc:
                if self._closed:  # closed on purpose (a stop) while waiting: not a failure
                    raise StopAsyncIteration from None
                await self.aclose()
                raise _unavailable(exc, midstream=True) from exc
            if data is None:
                await self._end(done=False)
                raise StopAsyncIteration
            if data == "[DONE]":
                await self._end(done=True)
                raise StopAsyncIteration
            chunk = await self._read_event(data)
            if chunk is not None:
                return chunk
        raise StopAsyncIteration

    async def _next_data(self) -> str | None:
        """The next event's ``data`` (its ``data:`` lines joined); None once the body has ended.

        Events end with a blank line; comments (``: ping``), event names and
        ids carry nothing we use, and an event without data is skipped.
        """
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                chunk = await anext(self._chunks, None)
                if chunk is None:
                    return None
                self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
                continue
            block, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            data = [line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
            if data:
                return b"\n".join(data).decode(errors="replace")

    async def _read_event(self, data: str) -> Chunk | None:
        """Record usage and finish reason from one chunk; the chunk, if it has choices.

        The usage is Parley's to report (with its cost), so it is taken out of a chunk that
        also carries choices."""
        try:
            chunk = json.loads(data)
            if chunk.get("error"):
                raise openai.APIError(
                    "error event in the stream", self._response.request, body=chunk["error"]
                )
            usage = chunk.pop("usage", None)
            if usage:
                self.usage = Usage(
                    prompt_tokens=int(usage["prompt_tokens"]),
                    completion_tokens=int(usage["completion_tokens"]),
                )
            choices = chunk.get("choices")
            if not choices:
                return None
            for choice in choices:
                if choice.get("finish_reason") and choice.get("index", 0) == 0:
                    self.finish_reason = choice["finish_reason"]
            return chunk
        except (openai.APIError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            await self.aclose()
            raise _unavailable(exc, midstream=True) from exc

    async def _end(self, *, done: bool) -> None:
        """The reply is over: release the connection, and tell a cut stream from a finished one."""
        if done:
            # Read the body's last bytes (the chunked terminator, already
            # buffered as a rule) so the connection goes back to the pool.
            with contextlib.suppress(TimeoutError, *_FAILURES):
                async with asyncio.timeout(_DRAIN_SECONDS):
                    async for _ in self._chunks:
                        pass
        await self.aclose()
        if not done and self.finish_reason is None and self.usage is None:
            # The body ended cleanly but the reply never did: a proxy cut it.
            logger.warning("LLM stream ended with no [DONE], finish_reason or usage")
            raise LLMUnavailable(
                "The language model service stopped mid-reply.", details={"reason": "truncated"}
            )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._response.aclose()
        except _FAILURES:  # Closing a broken connection may fail; it is closed either way.
            logger.debug("error while closing the LLM stream", exc_info=True)
        with contextlib.suppress(RuntimeError):  # still running in a cancelled reader: it ends itself
            await self._chunks.aclose()


class OpenAIProvider(LLMProvider):
    name = "openai"

    def __init__(self, config: ClientConfig | None = None) -> None:
        """``config``: the server, key, timeout and retries; by default the settings' provider."""
        self.config = config

    async def stream(
        self,
        *,
        messages: list[WireMessage],
        model: str,
        max_tokens: int,
        options: Mapping[str, Any] | None = None,
    ) -> LLMStream:
        """Send the request through the SDK's generic ``post``, not ``chat.completions.create``.

        ``create`` first walks the whole request through the SDK's TypedDict
        transform, which introspects ``CompletionCreateParams`` on every call:
        event-loop CPU that grows with the conversation, spent before a byte
        is sent (docs/benchmarks.md). Our body is the JSON a client sent
        (no aliases, dates or files), which that transform leaves unchanged;
        ``post`` sends it as is, with the same auth, retries, timeouts and
        status errors.
        """
        client = get_client(self.config)
        body = {
            **(options or {}),
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            # Returns once the headers are in. Only the SDK's stream wrapper is
            # built (nothing read through it): OpenAIStream reads the response.
            sdk_stream = await client.post(
                "/chat/completions",
                cast_to=object,
                body=body,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except _FAILURES as exc:
            raise _unavailable(exc, midstream=False) from exc
        return OpenAIStream(sdk_stream.response)

    async def embeddings(self, *, model: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """The upstream's answer as it came (``encoding_format`` and all), through the SDK's ``post``."""
        try:
            answer = await get_client(self.config).post(
                "/embeddings", cast_to=object, body={**options, "model": model}
            )
        except _FAILURES as exc:
            raise _unavailable(exc, midstream=False) from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise LLMUnavailable(
                "The language model service answered with no embeddings.",
                details={"reason": "upstream_error"},
            )
        return answer
