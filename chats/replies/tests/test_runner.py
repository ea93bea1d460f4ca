"""The reply runtime belongs to the event loop that runs it: one server's shutdown on one loop
(and the grace timer it leaves behind) never stops replies served on another loop, nor the
replies of the next server on the same loop."""

import asyncio
import threading

import httpx
import pytest

from chats.models import Message
from chats.replies.runner import replies_startup, shutdown_asked
from config.asgi import application, http_application
from tests.helpers.money import assert_books_balance
from tests.helpers.streams import read_events, settled_reply

pytestmark = pytest.mark.django_db(transaction=True)

CHUNKS = tuple(f" w{i}" for i in range(10))
GRACE = 1.0  # seconds: far shorter than the reply (10 chunks 0.25 s apart)


@pytest.fixture
def slow_upstream(openai_settings, settings):
    settings.REPLY_SHUTDOWN_GRACE = GRACE
    openai_settings.configure(chunks=CHUNKS, chunk_delay=0.25)
    return openai_settings


async def lifespan_cycle(*, linger: float) -> None:
    """One server's whole life on the running loop (startup, then shutdown), as Schemathesis runs
    it around each test; then the loop lives on for ``linger`` seconds, as Schemathesis's does."""
    to_app: asyncio.Queue = asyncio.Queue()
    sent: list[str] = []

    async def send(message):
        sent.append(message["type"])

    for message in ("lifespan.startup", "lifespan.shutdown"):
        to_app.put_nowait({"type": message})
    await application({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await asyncio.sleep(linger)


def test_a_shutdown_on_another_loop_leaves_this_loops_reply_to_finish(
    live_asgi_url, slow_upstream, session, headers
):
    events: list[dict] = []

    def stream() -> None:
        with httpx.stream(
            "POST",
            f"{live_asgi_url}/api/sessions/{session.id}/messages/",
            json={"content": "Hi"},
            headers=headers,
            timeout=10,
        ) as response:
            events.extend(read_events(response))

    reader = threading.Thread(target=stream)
    reader.start()
    assert slow_upstream.wait_until_sync(lambda: slow_upstream.requests, timeout=5)
    asyncio.run(lifespan_cycle(linger=GRACE + 0.5))  # its grace timer fires while the reply streams
    reader.join(timeout=10)

    assert [event["event"] for event in events] == ["start", *["delta"] * len(CHUNKS), "done"]
    reply = settled_reply(session)
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == "".join(CHUNKS)
    assert_books_balance(session.user)


async def test_the_next_startup_on_a_loop_cancels_the_grace_timer_of_its_previous_server(
    slow_upstream, session, headers
):
    shutdown_asked()  # the previous server on this loop was asked to stop…
    replies_startup()  # …and a new one starts before its grace is over

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=10) as client:
        response = await client.post(
            f"/api/sessions/{session.id}/messages/", json={"content": "Hi"}, headers=headers
        )

    assert response.status_code == 200
    names = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event:")]
    assert names == ["start", *["delta"] * len(CHUNKS), "done"]
    reply = await Message.objects.aget(session=session, role="assistant")
    assert reply.status == Message.Status.COMPLETE


async def test_the_application_fuzzed_in_process_has_no_lifespan_to_reach_the_reply_runtime():
    """It refuses the lifespan scope before asking for a message: servers and Schemathesis then
    serve it without one, as ASGI says."""
    asked = []

    async def receive():
        asked.append(True)
        return {"type": "lifespan.shutdown"}

    async def send(message):
        asked.append(message)

    with pytest.raises(ValueError, match="lifespan"):
        await http_application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert asked == []
