"""Spending caps: a user's daily and monthly caps, and an API key's monthly cap, enforced with the
reservation (reserved credits count as spent), on both databases and under concurrency."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from model_bakery import baker

from chats.llm import Usage
from chats.models import ChatSession, Message
from chats.replies.services import ReplyPlan, reply_begin, reply_finish
from tests.helpers.concurrency import in_parallel, requires_postgres
from wallets.errors import SpendCapReached
from wallets.models import Hold, LedgerEntry, Wallet
from wallets.selectors import spend_period_start

pytestmark = pytest.mark.django_db


def worst(session) -> int:
    """What one reply of the tests reserves."""
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    with transaction.atomic():
        reply_finish(plan=plan, content="", usage=None, status="failed")
    return plan.held


def set_caps(user, *, daily=None, monthly=None) -> None:
    Wallet.objects.filter(user=user).update(daily_spend_cap=daily, monthly_spend_cap=monthly)


def test_a_reply_past_the_daily_cap_is_refused_and_nothing_is_stored(session, user):
    held = worst(session)
    set_caps(user, daily=2 * held)
    reply_begin(user=user, session_id=session.id, content="one")
    reply_begin(user=user, session_id=session.id, content="two")

    with pytest.raises(SpendCapReached) as refused:
        reply_begin(user=user, session_id=session.id, content="three")

    assert refused.value.details == {"cap": 2 * held, "period": "day", "spent": 2 * held, "required": held}
    assert Message.objects.filter(content="three").count() == 0
    assert Hold.objects.filter(status="open").count() == 2


def test_settled_charges_of_the_day_count_and_yesterdays_do_not(session, user, settings):
    settings.MIN_REPLY_TOKENS = settings.LLM_MAX_TOKENS  # no shorter reply within the cap
    held = worst(session)
    plan = reply_begin(user=user, session_id=session.id, content="one")
    reply_finish(plan=plan, content="a long answer " * 50, usage=None, status="complete")
    charged = -LedgerEntry.objects.get(kind="charge").amount
    set_caps(user, daily=charged + held - 1)

    with pytest.raises(SpendCapReached) as refused:
        reply_begin(user=user, session_id=session.id, content="two")
    assert refused.value.details["spent"] == charged

    LedgerEntry.objects.filter(kind="charge").values("pk")  # entries are immutable: move the day instead
    assert (
        spend_period_start("day", now=timezone.now() + timedelta(days=1))
        > LedgerEntry.objects.get(kind="charge").created_at
    )


def test_the_monthly_cap_and_the_settings_default(session, user, settings):
    held = worst(session)
    settings.DEFAULT_MONTHLY_SPEND_CAP = held
    reply_begin(user=user, session_id=session.id, content="one")
    with pytest.raises(SpendCapReached) as refused:
        reply_begin(user=user, session_id=session.id, content="two")
    assert refused.value.details["period"] == "month"
    set_caps(user, monthly=10 * held)  # the wallet's own cap wins over the default
    reply_begin(user=user, session_id=session.id, content="three")


def test_the_message_endpoint_answers_402_spend_cap_reached(auth_client, session, user, settings):
    set_caps(user, daily=1)
    settings.MIN_REPLY_TOKENS = 1000  # one credit pays for fewer tokens than that
    response = auth_client.post(
        f"/api/sessions/{session.id}/messages/",
        {"content": "hi"},
        format="json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "spend_cap_reached"
    assert set(error["details"]) == {"cap", "period", "spent", "required"}


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_replies_against_a_daily_cap_that_allows_five(user, general_category):
    session = baker.make(ChatSession, user=user, category=general_category)
    held = worst(session)
    call_command("topup_wallet", user.login_id, str(100 * held), "--reason", "plenty", stdout=None)
    set_caps(user, daily=5 * held)

    outcomes = in_parallel(
        lambda i: reply_begin(user=user, session_id=session.id, content=f"q{i}"), callers=30
    )

    begun = [o for o in outcomes if isinstance(o, ReplyPlan)]
    refused = [o for o in outcomes if isinstance(o, SpendCapReached)]
    assert len(begun) + len(refused) == 30, outcomes
    assert len(begun) == 5
    assert Hold.objects.filter(status="open").count() == 5
    for plan in begun:  # each spent in full (the cost is capped at the hold), and recorded
        used = Usage(prompt_tokens=10**6, completion_tokens=10**6)
        reply_finish(plan=plan, content="x", usage=used, status="complete")
    assert -sum(LedgerEntry.objects.filter(kind="charge").values_list("amount", flat=True)) == 5 * held
    call_command("audit_wallets")
