"""A real HTTP server on loopback that speaks the OpenAI chat-completions API.

The tests and the benchmarks drive the real ``openai`` client against it, so
the wire format, connection handling, timeouts and disconnects are the real
ones; only the model is fake. It is plain asyncio (HTTP/1.1, keep-alive,
chunked server-sent events) in a background thread with its own event loop,
light enough for a thousand concurrent streams, and free of pytest so a
benchmark can use it too, in-process::

    with FakeOpenAI() as fake:
        fake.configure(reply="Hello there", chunk_delay=0.01)
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        fake.last_request.body["max_tokens"]

or as its own process (so that it does not share a GIL with what is being
measured), configured over HTTP::

    python -m tests.fakes.openai_upstream --port 8100 --chunks 50 --chunk-delay 0.02
    curl -X POST localhost:8100/fake/scenario -d '{"reply": "Hi", "first_chunk_delay": 0.1}'
    curl localhost:8100/fake/stats

``POST /v1/chat/completions`` answers as :class:`Scenario` says: with
``"stream": true`` a ``text/event-stream`` of ``data: {chunk}`` events (a role
chunk, one chunk per delta, a chunk with the finish reason, the usage chunk
with ``"choices": []`` when the request asked for it with
``stream_options.include_usage``, then ``data: [DONE]``); without it one
``chat.completion`` JSON body. The reply stops at the request's
``max_completion_tokens`` or ``max_tokens``, one delta counting as one token
(finish reason ``"length"``), unless the scenario ignores it. A request that
offers ``tools``, asks for a ``response_format``, ``n`` > 1 or ``logprobs`` is
answered as :mod:`chats.llm.playalong` decides, so that a real client
completes its round trip: a tool call (its arguments streamed in pieces), JSON
for the schema, the answer to a tool result (those capped and counted by the
estimate rule), or else the scenario's reply, in ``n`` choices, with logprobs;
on the scenario's schedule and with its failures. ``POST /v1/embeddings`` answers with
playalong's vectors; ``GET /v1/models`` lists one model. Chunks keep to a
schedule (the first ``first_chunk_delay`` after the headers, then one every
``chunk_delay``), so a loaded server does not drift. Every request is
recorded (:class:`RecordedRequest`), including whether the client hung up
before its answer ended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from chats.llm import playalong

__all__ = ["FakeOpenAI", "RecordedRequest", "Scenario"]

_WORDISH = re.compile(r"\s*\S+|\s+")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "transfer-encoding": "chunked",
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class Scenario:
    """How the fake answers. Replace it whole (``fake.configure(...)``) between requests."""

    reply: str = "Hello from the fake model."
    #: Explicit deltas; by default ``reply`` split into words, each with its leading space.
    chunks: tuple[str, ...] | None = None
    #: Seconds before the status line (the client is still waiting for ``create()`` to return).
    headers_delay: float = 0.0
    #: Seconds between the headers (sent with the role chunk) and the first content chunk.
    first_chunk_delay: float = 0.0
    #: Seconds between content chunks.
    chunk_delay: float = 0.0
    #: Answer this HTTP status with an OpenAI-style JSON error instead of a reply (a 4xx is an
    #: ``invalid_request_error``, a 5xx a ``server_error``).
    fail_status: int | None = None
    #: The error's ``param`` (the request field at fault) and ``code``.
    fail_param: str | None = None
    fail_code: str | None = None
    #: Fail only the first N requests (then reply normally); ``None``: every request.
    fail_times: int | None = None
    #: Fail this share (0-1) of the requests, drawn at random; ``None``: every request.
    fail_ratio: float | None = None
    #: Seeds the draws of ``fail_ratio`` (set again by each ``configure``), for repeatable runs.
    fail_seed: int | None = None
    fail_message: str = "The fake upstream failed."
    #: ``retry-after-ms`` header on failures (the openai client honours it when retrying).
    retry_after_ms: int | None = None
    #: Close the connection abruptly after this many content chunks (no terminator, no [DONE]).
    fail_after_chunks: int | None = None
    #: Send an SSE error event (``data: {"error": ...}``) after this many content chunks, then end.
    error_event_after_chunks: int | None = None
    #: Precede every content chunk with an SSE comment (``: keep-alive``), as some gateways do.
    keepalive_comments: bool = False
    #: ``False``: end the body without ``data: [DONE]``.
    send_done: bool = True
    #: ``False``: never send the usage chunk, even when the client asked for it.
    include_usage: bool = True
    #: Reported usage; by default ``len(request messages JSON) // 4`` and the number of chunks.
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: ``None``: no chunk carries a finish reason.
    finish_reason: str | None = "stop"
    #: Reply in full whatever the request's ``max_tokens``: an upstream that overruns its bound.
    ignore_max_tokens: bool = False

    def deltas(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else _WORDISH.findall(self.reply)


@dataclass
class RecordedRequest:
    """One request the fake received, and what became of its answer."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    #: Which connection carried it (1, 2, ... in accept order): shows keep-alive reuse.
    connection: int = 0
    status: int = 200
    chunks_sent: int = 0
    #: The whole answer (for a stream: through ``[DONE]``) was written.
    completed: bool = False
    #: The client closed the connection before the answer was complete.
    disconnected: bool = False
    received_at: float = field(default_factory=time.monotonic)


class _Disconnected(Exception):
    pass


class FakeOpenAI:
    """The fake server. ``start()``/``stop()`` or use it as a context manager.

    ``loop_factory`` builds the server's event loop (``uvloop.new_event_loop``
    for a benchmark; the default is the standard asyncio loop).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: Scenario | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> None:
        self.host = host
        self.port = port
        self.scenario = scenario or Scenario()
        self.loop_factory = loop_factory
        self._requests: list[RecordedRequest] = []
        self._failures_served = 0
        self._fail_draws = random.Random(self.scenario.fail_seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.active_streams = 0

    # --- control (any thread) ---------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **changes: Any) -> Scenario:
        """Start from the default scenario with ``changes`` applied; later requests use it."""
        if isinstance(changes.get("chunks"), list):
            changes["chunks"] = tuple(changes["chunks"])
        with self._lock:
            self.scenario = dataclasses.replace(Scenario(), **changes)
            self._failures_served = 0
            self._fail_draws = random.Random(self.scenario.fail_seed)
        return self.scenario

    def reset(self) -> None:
        """The default scenario and no recorded requests."""
        with self._lock:
            self.scenario = Scenario()
            self._requests = []
            self._failures_served = 0
            self._fail_draws = random.Random()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        requests = self.requests
        assert requests, "the fake OpenAI server received no request"
        return requests[-1]

    def stats(self) -> dict[str, int]:
        requests = self.requests
        return {
            "requests": len(requests),
            "completed": sum(r.completed for r in requests),
            "disconnected": sum(r.disconnected for r in requests),
            "chunks_sent": sum(r.chunks_sent for r in requests),
            "active_streams": self.active_streams,
        }

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll ``predicate`` without blocking the caller's event loop (its sockets must close)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def wait_until_sync(self, predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Like :meth:`wait_until`, for a thread with no event loop of its own running."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    async def wait_for_disconnect(self, timeout: float = 2.0) -> bool:
        """True once some recorded request's client hung up mid-answer."""
        return await self.wait_until(lambda: any(r.disconnected for r in self.requests), timeout)

    def start(self) -> Self:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self.loop_factory()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, backlog=4096, limit=2**20)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the server (its own thread and loop) -----------------------------

    async def _shutdown(self) -> None:
        """Stop listening and drop every connection; handlers see EOF and end normally."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._handlers.values()):
            writer.transport.abort()
        if self._handlers:
            _done, stragglers = await asyncio.wait(list(self._handlers), timeout=5)
            for task in stragglers:
                task.cancel()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        connection = next(self._connection_ids)
        try:
            keep_alive = True
            while keep_alive:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                keep_alive = headers.get("connection", "").lower() != "close"
                path = target.split("?", 1)[0]
                request = RecordedRequest(method, path, headers, body=None, connection=connection)
                keep_alive = await self._respond(reader, writer, request, raw) and keep_alive
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            self._handlers.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        raw: bytes,
    ) -> bool:
        """Answer one request; False when the connection must not be reused."""
        method, path = record.method, record.path
        try:
            body = record.body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if path.startswith("/fake/"):
            return await self._control(writer, record, body)
        with self._lock:
            self._requests.append(record)
            scenario = self.scenario

        if path == "/v1/models" and method == "GET":
            models = {"object": "list", "data": [_model("fake-model")]}
            return await self._send_json(writer, record, 200, models)
        if path not in ("/v1/chat/completions", "/v1/embeddings"):
            return await self._send_error(writer, record, 404, f"No route for {path}.")
        if method != "POST":
            return await self._send_error(writer, record, 405, "Use POST.")
        chat = path == "/v1/chat/completions"
        if chat and not (isinstance(body, dict) and isinstance(body.get("messages"), list)):
            message = "The body must be JSON with a messages list."
            return await self._send_error(writer, record, 400, message, param="messages")
        if not isinstance(body, dict):
            return await self._send_error(writer, record, 400, "The body must be a JSON object.")

        watcher = _HangupWatcher(reader)
        try:
            await watcher.pause_until(watcher.now() + scenario.headers_delay)
            if scenario.fail_status is not None and self._take_failure(scenario):
                extra = {}
                if scenario.retry_after_ms is not None:
                    extra["retry-after-ms"] = str(scenario.retry_after_ms)
                status, message = scenario.fail_status, scenario.fail_message
                param, code = scenario.fail_param, scenario.fail_code
                return await self._send_error(writer, record, status, message, extra, param=param, code=code)
            if not chat:
                answer = playalong.embeddings(str(body.get("model", "")), body)
                return await self._send_json(writer, record, 200, answer)
            if body.get("stream"):
                return await self._stream(writer, watcher, record, scenario, body)
            return await self._send_json(writer, record, 200, self._completion(scenario, body))
        except playalong.InvalidRequest as exc:  # raised before anything is written
            return await self._send_error(writer, record, 400, str(exc), param=exc.error["param"])
        except (_Disconnected, ConnectionError):
            record.disconnected = True
            return False
        finally:
            await watcher.stop()

    async def _control(self, writer: asyncio.StreamWriter, record: RecordedRequest, body: Any) -> bool:
        """``POST /fake/scenario`` (:class:`Scenario` fields), ``POST /fake/reset``, ``GET /fake/stats``."""
        try:
            if record.path == "/fake/scenario" and record.method == "POST":
                scenario = self.configure(**(body or {}))
                return await self._send_json(writer, record, 200, dataclasses.asdict(scenario))
        except TypeError as exc:
            return await self._send_error(writer, record, 400, str(exc))
        if record.path == "/fake/reset" and record.method == "POST":
            self.reset()
            return await self._send_json(writer, record, 200, self.stats())
        if record.path == "/fake/stats":
            return await self._send_json(writer, record, 200, self.stats())
        return await self._send_error(writer, record, 404, f"No route for {record.path}.")

    def _take_failure(self, scenario: Scenario) -> bool:
        with self._lock:
            if scenario.fail_times is not None and self._failures_served >= scenario.fail_times:
                return False
            if scenario.fail_ratio is not None and self._fail_draws.random() >= scenario.fail_ratio:
                return False
            self._failures_served += 1
            return True

    async def _stream(
        self,
        writer: asyncio.StreamWriter,
        watcher: _HangupWatcher,
        record: RecordedRequest,
        scenario: Scenario,
        body: dict[str, Any],
    ) -> bool:
        events = self._events(scenario, body)
        cut_after = scenario.fail_after_chunks
        self.active_streams += 1
        try:
            writer.write(_head(200, _STREAM_HEADERS) + events.opening)
            await _drain(writer, watcher)
            deadline = watcher.now() + scenario.first_chunk_delay
            for index, event in enumerate(events.chunks):
                await watcher.pause_until(deadline)
                deadline += scenario.chunk_delay
                if cut_after is not None and index >= cut_after:
                    writer.transport.abort()  # mid-stream crash: no terminator, no [DONE]
                    return False
                if scenario.error_event_after_chunks == index:
                    writer.write(_error_event(scenario.fail_message) + b"0\r\n\r\n")
                    await _drain(writer, watcher)
                    return True
                if scenario.keepalive_comments:
                    writer.write(_chunked(b": keep-alive\n\nevent: message\n"))
                writer.write(event)
                await _drain(writer, watcher)
                record.chunks_sent += 1
            if cut_after is not None:  # at or beyond the last chunk
                writer.transport.abort()
                return False
            tail = events.closing
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if wants_usage and scenario.include_usage:
                tail += events.usage
            if scenario.send_done:
                tail += _sse(b"[DONE]")
            writer.write(tail + b"0\r\n\r\n")
            await _drain(writer, watcher)
            record.completed = True
            return True
        finally:
            self.active_streams -= 1

    def _events(self, scenario: Scenario, body: dict[str, Any]) -> _Events:
        """The stream's events: the scenario's reply, or playalong's when the request asks for more."""
        chunk = _ChunkFactory(f"chatcmpl-fake-{next(self._ids)}", str(body.get("model", "")))
        if not _asks_for_more(body):
            deltas, finish_reason = _scenario_deltas(scenario, body)
            return _Events(
                opening=chunk.role(),
                chunks=[chunk.content(delta) for delta in deltas],
                closing=b"" if finish_reason is None else chunk.finish(finish_reason),
                usage=chunk.usage(_usage(scenario, body, len(deltas))),
            )
        reply, completion = _reply(scenario, body)
        rendered = [
            chunk.whole(event)
            for event in reply.stream_chunks(completion_id=chunk.id, created=chunk.created, model=chunk.model)
        ]
        # Each choice's role chunk first and its finish chunk last (see Reply.stream_chunks).
        opening, chunks, closing = rendered[: reply.n], rendered[reply.n : -reply.n], rendered[-reply.n :]
        return _Events(
            opening=b"".join(opening),
            chunks=chunks,
            closing=b"" if scenario.finish_reason is None else b"".join(closing),
            usage=chunk.usage(_usage(scenario, body, completion)),
        )

    def _completion(self, scenario: Scenario, body: dict[str, Any]) -> dict[str, Any]:
        head = {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
        }
        if _asks_for_more(body):
            reply, completion = _reply(scenario, body)
            return {
                **head,
                "choices": reply.completion_choices(),
                "usage": _usage(scenario, body, completion),
            }
        deltas, finish_reason = _scenario_deltas(scenario, body)
        message = {"role": "assistant", "content": "".join(deltas)}
        choice = {"index": 0, "message": message, "finish_reason": finish_reason or "stop", "logprobs": None}
        return {**head, "choices": [choice], "usage": _usage(scenario, body, len(deltas))}

    async def _send_json(
        self,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        status: int,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
    ) -> bool:
        data = json.dumps(payload).encode()
        record.status = status
        headers = {"content-type": "application/json", "content-length": str(len(data))}
        headers.update(extra_headers or {})
        writer.write(_head(status, headers) + data)
        await writer.drain()
        record.completed = True
        return True

    async def _send_error(
        self,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        status: int,
        message: str,
        extra_headers: dict[str, str] | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> bool:
        """OpenAI's error body: the client's fault (``invalid_request_error``) below 500."""
        kind = "invalid_request_error" if status < 500 else "server_error"
        payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return await self._send_json(writer, record, status, payload, extra_headers)


class _HangupWatcher:
    """Notices, while the fake waits or writes, that the client closed its connection.

    During an answer an HTTP/1.1 client sends nothing, so a finished read means
    the peer hung up: a pending read runs alongside the answer and wakes any
    pause at once. It consumes nothing if cancelled, so the connection can
    carry its next request afterwards.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._loop = asyncio.get_running_loop()
        self._read = self._loop.create_task(reader.read(1))
        self._read.add_done_callback(self._wake)
        self._waiter: asyncio.Future[None] | None = None

    def now(self) -> float:
        return self._loop.time()

    def hung_up(self) -> bool:
        return self._read.done()

    def _wake(self, _read: object = None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def pause_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (loop time), unless the client hangs up first."""
        if deadline > self._loop.time() and not self.hung_up():
            self._waiter = self._loop.create_future()
            timer = self._loop.call_at(deadline, self._wake)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.hung_up():
            raise _Disconnected

    async def stop(self) -> None:
        """End the watch; wait for the cancelled read to land (one reader at a time)."""
        self._read.cancel()
        await asyncio.wait({self._read})
        if not self._read.cancelled():
            self._read.exception()  # retrieve a connection reset, so asyncio does not log it


async def _drain(writer: asyncio.StreamWriter, watcher: _HangupWatcher) -> None:
    await writer.drain()
    if watcher.hung_up():
        raise _Disconnected


class _ChunkFactory:
    """Pre-rendered JSON around each delta: the fake spends its time on I/O, not on dumps()."""

    def __init__(self, completion_id: str, model: str) -> None:
        self.id, self.created, self.model = completion_id, int(time.time()), model
        base = json.dumps(
            {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": model},
            separators=(",", ":"),
        )[:-1]
        self._base = base + ',"system_fingerprint":null'
        self._content_head = (self._base + ',"choices":[{"index":0,"delta":{"content":').encode()
        self._content_tail = b'},"logprobs":null,"finish_reason":null}],"usage":null}'

    def content(self, delta: str) -> bytes:
        return _sse(self._content_head + json.dumps(delta).encode() + self._content_tail)

    def role(self) -> bytes:
        return self._event({"role": "assistant", "content": ""}, None)

    def finish(self, reason: str) -> bytes:
        return self._event({}, reason)

    def _event(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        tail = json.dumps({"choices": [choice], "usage": None}, separators=(",", ":"))[1:]
        return _sse((self._base + "," + tail).encode())

    def usage(self, usage: dict[str, int]) -> bytes:
        tail = json.dumps({"choices": [], "usage": usage}, separators=(",", ":"))[1:]
        return _sse((self._base + "," + tail).encode())

    @staticmethod
    def whole(chunk: dict[str, Any]) -> bytes:
        """A chunk rendered elsewhere (playalong's)."""
        return _sse(json.dumps(chunk, separators=(",", ":")).encode())


@dataclass(frozen=True)
class _Events:
    """One streamed reply, rendered: sent with the headers, on the schedule, at the end."""

    opening: bytes
    chunks: list[bytes]
    closing: bytes
    usage: bytes


def _asks_for_more(body: dict[str, Any]) -> bool:
    """Whether the request may want more than the scenario's reply as it is (tools, a format,
    several choices, logprobs): then :func:`_reply` decides."""
    response_format, n = body.get("response_format"), body.get("n")
    return bool(
        body.get("tools")
        or (isinstance(response_format, dict) and response_format.get("type") not in (None, "text"))
        or (isinstance(n, int) and n > 1)
        or body.get("logprobs")
    )


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _scenario_deltas(scenario: Scenario, body: dict[str, Any]) -> tuple[list[str], str | None]:
    """The scenario's deltas up to the request's max tokens (one a token), and the finish reason."""
    deltas = scenario.deltas()
    limit = None if scenario.ignore_max_tokens else _max_tokens(body)
    if limit is None or len(deltas) <= limit or scenario.finish_reason is None:
        return deltas[:limit], scenario.finish_reason
    return deltas[:limit], "length"


def _reply(scenario: Scenario, body: dict[str, Any]) -> tuple[playalong.Reply, int]:
    """Playalong's reply and its completion tokens. Plain text is the scenario's deltas (one a
    token, in each of the ``n`` choices); a tool call or JSON is playalong's, capped and counted
    by the estimate rule."""
    limit = None if scenario.ignore_max_tokens else _max_tokens(body)
    reply = playalong.reply(body["messages"], body, max_tokens=limit)
    if not reply.plain:
        return reply, reply.completion_tokens
    deltas, finish_reason = _scenario_deltas(scenario, body)
    reply = dataclasses.replace(reply, pieces=tuple(deltas), finish_reason=finish_reason or "stop")
    return reply, reply.n * len(deltas)


def _usage(scenario: Scenario, body: dict[str, Any], completion: int) -> dict[str, int]:
    """The scenario's figures where it sets them; else a quarter of the messages' JSON length, and
    ``completion``."""
    prompt = scenario.prompt_tokens
    if prompt is None:
        prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    if scenario.completion_tokens is not None:
        completion = scenario.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error_event(message: str) -> bytes:
    error = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return _sse(json.dumps(error).encode())


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "fake"}


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _sse(data: bytes) -> bytes:
    """One server-sent event as one HTTP chunk."""
    size = len(data) + 8  # b"data: " and b"\n\n"
    return b"%x\r\ndata: %b\n\n\r\n" % (size, data)


def main(argv: list[str] | None = None) -> None:
    """Serve the fake in the foreground until interrupted (for benchmarks)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--reply", default=Scenario.reply)
    parser.add_argument("--chunks", type=int, help="reply with this many chunks (' t0', ' t1', ...)")
    parser.add_argument("--first-chunk-delay", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop")
    args = parser.parse_args(argv)
    loop_factory = asyncio.new_event_loop
    if args.uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    fake = FakeOpenAI(host=args.host, port=args.port, loop_factory=loop_factory)
    with fake:
        fake.configure(
            reply=args.reply,
            chunks=[f" t{i}" for i in range(args.chunks)] if args.chunks else None,
            first_chunk_delay=args.first_chunk_delay,
            chunk_delay=args.chunk_delay,
        )
        print(f"fake OpenAI API at {fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
