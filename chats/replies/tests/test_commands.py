"""``release_stale_holds``: replies whose process died, and holds of no live reply."""

import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from chats.models import Message
from chats.replies.services import reply_begin, reply_finish
from tests.helpers.money import age_hold, assert_books_balance
from tests.helpers.money import release_stale_holds as run
from tests.helpers.streams import post_stream
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.services import wallet_hold

pytestmark = pytest.mark.django_db


def reserve(user, amount: int) -> Hold:
    with transaction.atomic():
        return wallet_hold(user=user, amount=amount)


def test_help_explains_the_command():
    command = load_command_class("chats", "release_stale_holds")
    text = " ".join(command.create_parser("manage.py", "release_stale_holds").format_help().split())
    for words in ("--minutes", "STALE_HOLD_MINUTES", "lease", "live replies"):
        assert words in text


def test_release_stale_holds_uses_the_configured_age(user, settings):
    settings.STALE_HOLD_MINUTES = 15
    old, fresh = reserve(user, 10), reserve(user, 20)
    age_hold(old, minutes=16)
    age_hold(fresh, minutes=14)

    out = run()

    assert "Closed 0 stale replies as failed." in out
    assert f"released hold {old.pk}: 10 credits" in out
    assert "Released 1 stale hold(s)." in out
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance, wallet.held) == (100, 20)


def test_release_stale_holds_leaves_settled_holds_and_the_books_balance(user, session):
    reply = reply_begin(user=user, session_id=session.id, content="hi")
    reply_finish(plan=reply, content="hello", usage=None, status="complete")  # a charge, its usage record
    settled = Hold.objects.get(pk=reply.hold_id)
    age_hold(settled, minutes=30)
    age_hold(reserve(user, 10), minutes=30)

    assert "Released 1 stale hold(s)." in run()

    assert Hold.objects.get(pk=settled.pk).status == Hold.Status.SETTLED
    call_command("audit_wallets", stdout=StringIO())


def test_release_stale_holds_takes_minutes(user):
    age_hold(reserve(user, 10), minutes=3)
    assert "Released 1 stale hold(s)." in run("--minutes", "2")
    assert Wallet.objects.get(user=user).held == 0


def test_release_stale_holds_refuses_negative_minutes(user):
    with pytest.raises(CommandError, match="zero or more"):
        run("--minutes", "-1")


def test_a_reply_whose_lease_ran_out_is_closed_and_its_hold_released(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    Message.objects.filter(pk=plan.assistant_message_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    out = run("--minutes", "15")

    assert "Closed 1 stale reply as failed." in out
    assert Message.objects.get(pk=plan.assistant_message_id).status == Message.Status.FAILED
    assert Hold.objects.get(pk=plan.hold_id).status == Hold.Status.RELEASED
    assert Wallet.objects.get(user=session.user).held == 0


def test_a_pending_reply_with_a_live_lease_is_left_alone_however_old(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    Message.objects.filter(pk=plan.assistant_message_id).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    age_hold(Hold.objects.get(pk=plan.hold_id), minutes=120)

    out = run("--minutes", "0")

    assert "Closed 0 stale replies" in out
    assert "Released 0 stale hold(s)." in out
    assert Message.objects.get(pk=plan.assistant_message_id).status == Message.Status.PENDING
    assert Hold.objects.get(pk=plan.hold_id).status == Hold.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_sweep_during_a_slow_stream_leaves_it_to_finish_and_be_charged(
    live_asgi_url, openai_settings, session
):
    """The reply outlives its first lease many times over, renewing it, while the sweep runs."""
    openai_settings.configure(reply="one two three four five six", chunk_delay=0.4)
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(session.user).access_token}"}
    with override_settings(REPLY_LEASE_SECONDS=1):
        sweeps = []

        def sweep_while_streaming():
            assert openai_settings.wait_until_sync(lambda: openai_settings.requests, timeout=5)
            for _ in range(6):
                time.sleep(0.4)
                sweeps.append(run("--minutes", "0"))

        sweeper = threading.Thread(target=sweep_while_streaming)
        sweeper.start()
        events = post_stream(live_asgi_url, session, headers)
        sweeper.join(timeout=20)

    assert events[-1][0] == "done"
    assert all("Closed 0 stale replies" in out and "Released 0 stale hold(s)." in out for out in sweeps)
    reply = Message.objects.get(session=session, role="assistant")
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == "one two three four five six"
    assert reply.cost >= 1
    assert LedgerEntry.objects.filter(kind="charge", amount=-reply.cost).count() == 1
    assert_books_balance(session.user)
