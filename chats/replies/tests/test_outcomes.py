"""The reply generator's cancellation windows, driven directly on the event loop."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chats.llm import EchoProvider, routing
from chats.models import Message
from chats.replies.outcomes import Delta, reply_outcomes
from chats.replies.services import reply_begin
from core.db.connections import release_connection
from wallets.models import Hold, Wallet

pytestmark = pytest.mark.django_db(transaction=True)


class SlowClosingEcho(EchoProvider):
    """The offline provider, with an upstream that takes its time to hang up."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = asyncio.Event()

    async def stream(self, **kwargs):
        stream = await super().stream(**kwargs)
        close = stream.aclose

        async def slow_close() -> None:
            self.closing.set()
            await asyncio.sleep(0.5)
            await close()

        stream.aclose = slow_close
        return stream


async def test_client_leaving_while_the_upstream_closes_still_settles_the_reply(session, monkeypatch):
    try:
        provider = SlowClosingEcho()
        monkeypatch.setattr(routing, "provider_for", lambda route: provider)
        plan = await sync_to_async(reply_begin)(user=session.user, session_id=session.id, content="hi")
        deltas = []

        async def client():
            async for outcome in reply_outcomes(plan):
                deltas.append(outcome)

        task = asyncio.create_task(client())
        await asyncio.wait_for(provider.closing.wait(), timeout=5)
        task.cancel()  # what Django does when the client disconnects
        with pytest.raises(asyncio.CancelledError):
            await task

        reply = await Message.objects.aget(pk=plan.assistant_message_id)
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == "".join(delta.content for delta in deltas if isinstance(delta, Delta))
        assert reply.cost >= 1
        hold = await Hold.objects.aget(pk=plan.hold_id)
        assert hold.status == Hold.Status.SETTLED
        wallet = await Wallet.objects.aget(user=session.user)
        assert (wallet.balance, wallet.held) == (100 - reply.cost, 0)
    finally:
        # The ORM's async calls ran in asgiref's executor thread: close its connection.
        await sync_to_async(release_connection)()
