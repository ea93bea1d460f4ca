"""The ``echo`` provider: the offline reply, and ``ECHO_TOKEN_DELAY_MS``, which streams it word by word,
spaced, so streaming shows.

The delays asserted are lower bounds only (a slow machine makes gaps longer, never shorter), so
the tests cannot flake on a busy CI host.
"""

import itertools
import json
import time

import httpx
import pytest
from model_bakery import baker
from rest_framework_simplejwt.tokens import RefreshToken

from chats.llm import (
    ChatMessage,
    EchoProvider,
    LLMStream,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    get_provider,
)
from chats.models import ChatSession

PROMPT = [
    ChatMessage(role="system", content="Be brief."),
    ChatMessage(role="user", content="Say hello"),
]


async def collect(stream: LLMStream) -> list[str]:
    return [delta async for delta in stream]


# --- echo provider --------------------------------------------------------------------


async def test_echo_replies_with_the_last_user_message_in_word_chunks():
    messages = [*PROMPT, ChatMessage("assistant", "Hello!"), ChatMessage("user", "How  are you?")]

    stream = await EchoProvider().stream(messages=messages, model="any", max_tokens=100)
    deltas = await collect(stream)

    assert deltas == ["Echo:", " How", "  are", " you?"]
    assert stream.usage == Usage(
        prompt_tokens=estimate_prompt_tokens(messages),
        completion_tokens=estimate_tokens("Echo: How  are you?"),
        estimated=False,
    )
    assert stream.finish_reason == "stop"


async def test_echo_is_deterministic():
    async def once() -> tuple[list[str], Usage | None]:
        stream = await EchoProvider().stream(messages=PROMPT, model="m", max_tokens=100)
        return await collect(stream), stream.usage

    assert await once() == await once()


async def test_echo_caps_the_reply_at_max_tokens():
    messages = [ChatMessage("user", "word " * 100)]

    stream = await EchoProvider().stream(messages=messages, model="m", max_tokens=5)
    reply = "".join(await collect(stream))

    assert reply == ("Echo: " + "word " * 100)[:20]
    assert stream.usage.completion_tokens == 5
    assert stream.finish_reason == "length"


async def test_echo_with_no_user_message_and_a_delay():
    stream = await EchoProvider(delay=0.001).stream(
        messages=[ChatMessage("system", "x")], model="m", max_tokens=10
    )

    assert await collect(stream) == ["Echo."]


async def test_echo_aclose_ends_the_stream_without_usage():
    stream = await EchoProvider().stream(messages=PROMPT, model="m", max_tokens=10)
    assert await anext(stream) == "Echo:"

    await stream.aclose()

    assert await collect(stream) == []
    assert stream.usage is None


# --- ECHO_TOKEN_DELAY_MS ---------------------------------------------------------------


DELAY_MS = 40


WORDS = "one two three four"  # the reply "Echo: one two three four" is five chunks


async def test_no_delay_sends_the_reply_at_once(settings):
    settings.ECHO_TOKEN_DELAY_MS = 0
    provider = get_provider()

    assert isinstance(provider, EchoProvider)
    assert provider.delay == 0


async def test_factory_passes_the_setting_to_the_echo_provider(settings):
    settings.ECHO_TOKEN_DELAY_MS = DELAY_MS
    stream = await get_provider().stream(messages=[ChatMessage("user", WORDS)], model="m", max_tokens=100)

    arrivals = []
    async for _ in stream:
        arrivals.append(time.monotonic())

    assert len(arrivals) == 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= DELAY_MS / 1000 * 0.9, gaps


@pytest.mark.django_db(transaction=True)
def test_deltas_reach_the_client_spaced_by_the_delay(live_asgi_url, settings, user, general_category):
    """End to end under uvicorn: each delta is flushed to the socket as it is made, not buffered."""
    settings.ECHO_TOKEN_DELAY_MS = DELAY_MS
    session = baker.make(ChatSession, user=user, category=general_category)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}

    arrivals, deltas = [], []
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "POST",
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": WORDS},
            headers=headers,
        ) as response,
    ):
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "delta":
                deltas.append(json.loads(line.removeprefix("data: "))["content"])
                arrivals.append(time.monotonic())

    assert "".join(deltas) == f"Echo: {WORDS}"
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 4 * DELAY_MS / 1000 * 0.9
