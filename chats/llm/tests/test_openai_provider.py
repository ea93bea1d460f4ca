"""The ``openai`` provider, driven through the real ``openai`` client against a real HTTP fake."""

import asyncio
import socket

import httpx2
import openai
import pytest
from django.test import override_settings

from chats.llm import (
    LLMStream,
    LLMUnavailable,
    OpenAIProvider,
    UpstreamRefused,
    Usage,
    aclose_clients,
    chunk_text,
    estimate_prompt_tokens,
    estimate_usage,
    openai_provider,
)
from chats.llm.openai_provider import get_client

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


async def start(**overrides) -> LLMStream:
    kwargs = {"messages": PROMPT, "model": "fake-model", "max_tokens": 50, **overrides}
    return await OpenAIProvider().stream(**kwargs)


async def collect(stream: LLMStream) -> list[str]:
    """The text of each chunk that carries some (the role and finish chunks carry none)."""
    return [text async for chunk in stream if (text := chunk_text(chunk))]


# --- openai provider: the happy path ------------------------------------------


async def test_stream_yields_deltas_in_order_then_reported_usage(openai_settings):
    openai_settings.configure(chunks=["Hel", "lo", ", ", "world"], prompt_tokens=12, completion_tokens=4)

    async with await start() as stream:
        assert stream.usage is None
        deltas = await collect(stream)

    assert deltas == ["Hel", "lo", ", ", "world"]
    assert stream.usage == Usage(prompt_tokens=12, completion_tokens=4, estimated=False)
    assert stream.finish_reason == "stop"
    # The fake marks the request after its last write returns, which may be just after we read it.
    assert await openai_settings.wait_until(lambda: openai_settings.last_request.completed)


async def test_request_body_carries_model_messages_max_tokens_and_include_usage(openai_settings):
    await collect(await start(model="my-model", max_tokens=77))

    request = openai_settings.last_request
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    assert request.body["model"] == "my-model"
    assert request.body["max_tokens"] == 77
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]


async def test_sequential_streams_reuse_one_pooled_connection(openai_settings):
    for _ in range(3):
        await collect(await start())

    assert [r.connection for r in openai_settings.requests] == [openai_settings.requests[0].connection] * 3


async def test_many_concurrent_streams_each_get_every_chunk_in_order(openai_settings):
    chunks = [f" w{i}" for i in range(20)]
    openai_settings.configure(chunks=chunks, chunk_delay=0.005)

    async def one() -> list[str]:
        return await collect(await start())

    results = await asyncio.gather(*(one() for _ in range(100)))

    assert all(result == chunks for result in results)
    assert len(openai_settings.requests) == 100
    assert await openai_settings.wait_until(lambda: all(r.completed for r in openai_settings.requests))


async def test_no_usage_reported_leaves_usage_none_for_the_caller_to_estimate(openai_settings):
    openai_settings.configure(reply="Hi there", include_usage=False)

    stream = await start()
    deltas = await collect(stream)

    assert "".join(deltas) == "Hi there"
    assert stream.usage is None
    assert stream.finish_reason == "stop"
    assert estimate_usage(PROMPT, "".join(deltas)) == Usage(
        prompt_tokens=estimate_prompt_tokens(PROMPT), completion_tokens=2, estimated=True
    )


async def test_sse_comments_and_other_fields_are_ignored(openai_settings):
    openai_settings.configure(
        chunks=["x", "y"], keepalive_comments=True, prompt_tokens=1, completion_tokens=9
    )

    stream = await start()

    assert await collect(stream) == ["x", "y"]
    assert stream.usage == Usage(1, 9)


async def test_retries_a_5xx_before_the_stream_when_retries_are_allowed(openai_settings):
    openai_settings.configure(reply="ok", fail_status=503, fail_times=1, retry_after_ms=1)

    with override_settings(LLM_MAX_RETRIES=1):
        deltas = await collect(await start())

    assert deltas == ["ok"]
    assert [r.status for r in openai_settings.requests] == [503, 200]


# --- openai provider: failures -------------------------------------------------


@pytest.mark.parametrize(("upstream", "ours"), [(500, 502), (401, 502), (404, 502), (503, 503)])
async def test_error_status_before_the_stream_raises_unavailable(openai_settings, upstream, ours):
    openai_settings.configure(fail_status=upstream, fail_message="secret upstream detail")

    with pytest.raises(LLMUnavailable) as caught:
        await start()

    error = caught.value
    assert error.code == "llm_unavailable"
    assert error.status_code == ours
    assert error.details == {"reason": "upstream_status", "upstream_status": upstream}
    assert "secret" not in error.message
    assert len(openai_settings.requests) == 1  # LLM_MAX_RETRIES=0


@pytest.mark.parametrize("upstream", [400, 413, 422, 429])
async def test_a_refusal_of_the_request_itself_is_passed_on_with_its_status(openai_settings, upstream):
    openai_settings.configure(fail_status=upstream, fail_message="'tools' is not supported here.")

    with pytest.raises(UpstreamRefused) as caught:
        await start()

    assert caught.value.upstream_status == upstream
    assert caught.value.code == "llm_unavailable"  # to a chat reply's user, the model failed
    assert caught.value.error["message"] == "'tools' is not supported here."
    assert set(caught.value.error) == {"message", "type", "param", "code"}


async def test_unreachable_server_raises_unavailable(openai_settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request: nothing listens there

    with (
        override_settings(OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"),
        pytest.raises(LLMUnavailable) as caught,
    ):
        await start()

    assert caught.value.details == {"reason": "connection"}
    assert caught.value.status_code == 502


async def test_failure_mid_stream_raises_after_the_deltas_already_received(openai_settings):
    openai_settings.configure(chunks=["one", " two", " three", " four"], fail_after_chunks=2)
    received = []

    stream = await start()
    with pytest.raises(LLMUnavailable) as caught:
        async for chunk in stream:
            if text := chunk_text(chunk):
                received.append(text)

    assert received == ["one", " two"]
    assert caught.value.details == {"reason": "connection"}
    assert "mid-reply" in caught.value.message
    assert stream.usage is None
    assert await collect(stream) == []  # closed: iterating again just ends
    await stream.aclose()


async def test_cut_after_the_last_chunk_without_finish_is_a_failure(openai_settings):
    openai_settings.configure(chunks=["all", " of", " it"], fail_after_chunks=3)

    stream = await start()
    with pytest.raises(LLMUnavailable):
        await collect(stream)


async def test_body_ending_without_done_finish_reason_or_usage_counts_as_truncated(openai_settings):
    openai_settings.configure(reply="cut short", finish_reason=None, include_usage=False, send_done=False)

    stream = await start()
    with pytest.raises(LLMUnavailable) as caught:
        await collect(stream)

    assert caught.value.details == {"reason": "truncated"}


async def test_done_marker_alone_ends_a_reply_properly(openai_settings):
    openai_settings.configure(reply="bare", finish_reason=None, include_usage=False)

    stream = await start()

    assert await collect(stream) == ["bare"]
    assert (stream.usage, stream.finish_reason) == (None, None)


async def test_body_ending_after_finish_reason_without_done_is_complete(openai_settings):
    openai_settings.configure(reply="no done", include_usage=False, send_done=False)

    stream = await start()

    assert await collect(stream) == ["no", " done"]
    assert stream.finish_reason == "stop"


async def test_error_event_mid_stream_raises_unavailable_after_the_deltas(openai_settings):
    openai_settings.configure(chunks=["a", "b", "c"], error_event_after_chunks=2, fail_message="secret")
    received = []

    stream = await start()
    with pytest.raises(LLMUnavailable) as caught:
        async for chunk in stream:
            if text := chunk_text(chunk):
                received.append(text)

    assert received == ["a", "b"]
    assert caught.value.details == {"reason": "upstream_error"}
    assert "secret" not in caught.value.message


async def test_stream_without_finish_reason_but_with_usage_is_complete(openai_settings):
    openai_settings.configure(reply="fine", finish_reason=None, prompt_tokens=3, completion_tokens=1)

    stream = await start()

    assert await collect(stream) == ["fine"]
    assert stream.usage == Usage(3, 1)
    assert stream.finish_reason is None


async def test_no_first_chunk_within_the_timeout_raises_unavailable_and_hangs_up(openai_settings):
    openai_settings.configure(first_chunk_delay=5)

    with override_settings(LLM_TIMEOUT=0.2):
        stream = await start()  # the headers came at once
        with pytest.raises(LLMUnavailable) as caught:
            await collect(stream)

    assert caught.value.details == {"reason": "timeout"}
    assert await openai_settings.wait_for_disconnect()


async def test_no_headers_within_the_timeout_raises_unavailable_from_stream(openai_settings):
    openai_settings.configure(headers_delay=5)

    with override_settings(LLM_TIMEOUT=0.2), pytest.raises(LLMUnavailable) as caught:
        await start()

    assert caught.value.details == {"reason": "timeout"}
    assert caught.value.message == "The language model service did not answer in time."
    assert await openai_settings.wait_for_disconnect()


# --- openai provider: closing ---------------------------------------------------


async def test_aclose_mid_stream_closes_the_upstream_connection(openai_settings):
    openai_settings.configure(chunks=[f"c{i} " for i in range(50)], chunk_delay=0.02)

    stream = await start()
    assert chunk_text(await anext(stream)) == ""  # the role chunk
    assert chunk_text(await anext(stream)) == "c0 "
    await stream.aclose()

    assert await openai_settings.wait_for_disconnect()
    request = openai_settings.last_request
    assert not request.completed
    assert request.chunks_sent < 50
    assert await collect(stream) == []
    await stream.aclose()  # idempotent


async def test_cancelled_reader_then_aclose_closes_the_upstream_connection(openai_settings):
    """What the streaming view does when the client goes away: cancel, then aclose."""
    openai_settings.configure(chunks=["first", " second"], first_chunk_delay=0, chunk_delay=10)
    stream = await start()
    first = asyncio.Event()

    async def read() -> None:
        async for _ in stream:
            first.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 2)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await asyncio.shield(stream.aclose())

    assert await openai_settings.wait_for_disconnect()
    assert openai_settings.last_request.chunks_sent == 1


async def test_aclose_before_iterating_closes_the_upstream_connection(openai_settings):
    openai_settings.configure(first_chunk_delay=10)

    stream = await start()
    await stream.aclose()

    assert await openai_settings.wait_for_disconnect()
    assert openai_settings.last_request.chunks_sent == 0


# --- the client cache -------------------------------------------------------------


async def test_client_is_cached_per_loop_and_settings(openai_settings):
    client = get_client()

    assert get_client() is client
    with override_settings(LLM_TIMEOUT=3.5):
        other = get_client()
        assert other is not client
        assert other.timeout == 3.5
    assert get_client() is client
    assert client.base_url == openai_settings.base_url + "/"
    assert client.max_retries == 0
    assert client.api_key == "test"


def test_each_event_loop_gets_its_own_client_and_closed_loops_are_dropped(openai_settings):
    first = asyncio.new_event_loop()
    client = first.run_until_complete(_get_client())
    assert first.run_until_complete(_get_client()) is client
    first.close()

    second = asyncio.new_event_loop()
    try:
        assert second.run_until_complete(_get_client()) is not client
        loops = [loop for loop, _ in openai_provider._clients.items()]
        assert first not in loops
        assert second in loops
    finally:
        second.run_until_complete(aclose_clients())
        second.close()


async def _get_client() -> openai.AsyncOpenAI:
    return get_client()


async def test_missing_api_key_is_sent_as_a_placeholder(openai_settings):
    with override_settings(OPENAI_API_KEY=""):
        await collect(await start())

    assert openai_settings.last_request.headers["authorization"] == "Bearer not-needed"


async def test_aclose_clients_closes_and_forgets_this_loops_clients(openai_settings):
    await collect(await start())
    client = get_client()

    await aclose_clients()

    assert client.is_closed()
    assert get_client() is not client
    await aclose_clients()


# --- reading the event stream ---------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 7, 10_000])
async def test_events_are_read_from_the_bytes_however_split_with_either_line_ending(piece):
    """The stream splits the body into events itself: an event may come in many network reads,
    or several in one; lines may end in CRLF; ``data:`` may span lines."""
    body = (
        b'data: {"choices":[{"delta":{"content":"Hel"}}]}\r\n\r\n'
        b": ping\n\n"
        b'event: chunk\nid: 3\ndata: {"choices":[{"delta":{"content":"lo \xc3\xa9"},\n'
        b'data: "finish_reason":"stop"}]}\n\n'
        b'data: {"usage":{"prompt_tokens":3,"completion_tokens":2},"choices":[]}\n\n'
        b"data: [DONE]\n\n"
    )

    async def reads():
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    stream = openai_provider.OpenAIStream(httpx2.Response(200, content=reads()))

    assert await collect(stream) == ["Hel", "lo é"]
    assert (stream.finish_reason, stream.usage) == ("stop", Usage(prompt_tokens=3, completion_tokens=2))


async def test_aclose_while_a_read_waits_ends_the_stream_without_a_failure(openai_settings, caplog):
    """A stop closes the upstream while the reply waits for its next chunk: the iteration simply
    ends, and nothing says the upstream failed."""
    openai_settings.configure(reply="one two three four", first_chunk_delay=1.0, chunk_delay=0.5)
    stream = await start()
    first = await anext(stream)  # the role chunk, with the headers; "one" comes a second later
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)

    await stream.aclose()

    with pytest.raises(StopAsyncIteration):
        await waiting
    assert chunk_text(first) == ""
    assert "LLM upstream failed" not in caplog.text
