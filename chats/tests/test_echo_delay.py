"""``ECHO_TOKEN_DELAY_MS``: the offline provider streams word by word, spaced, so streaming shows.

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

from chats.llm import ChatMessage, EchoProvider, get_provider
from chats.models import ChatSession

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
