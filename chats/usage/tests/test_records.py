"""Usage outlives sessions: each chat reply leaves a usage record beside its charge, which the
ledger's audit checks, and migration 0010 gives the replies charged before it theirs."""

import contextlib
import datetime as dt
import re
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F, Sum
from django.utils import timezone
from model_bakery import baker

from chats.models import ChatSession, Message, UsageRecord
from chats.replies.services import replies_close_stale, reply_begin, reply_finish
from chats.usage import admin_selectors
from tests.helpers.money import assert_books_balance
from tests.helpers.usage_rows import charge_through_services
from wallets.models import LedgerEntry
from wallets.services import wallet_hold, wallet_settle

pytestmark = pytest.mark.django_db

URL = "/api/usage/"


def answered(user, session, content: str = "hi", status: str = "complete") -> Message:
    plan = reply_begin(user=user, session_id=session.id, content=content)
    return reply_finish(plan=plan, content="an answer " * 30, usage=None, status=status).message


def audit() -> list[str]:
    """``audit_wallets``' problems, one a line (none when it passes)."""
    err = StringIO()
    with contextlib.suppress(CommandError):
        call_command("audit_wallets", stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def charged_credits() -> int:
    return -(LedgerEntry.objects.filter(kind="charge").aggregate(total=Sum("amount"))["total"] or 0)


@pytest.fixture
def session(user, general_category):
    return baker.make(ChatSession, user=user, category=general_category)


def test_a_reply_leaves_a_usage_record_beside_its_charge(user, session):
    reply = answered(user, session)

    record = UsageRecord.objects.get()
    charge = LedgerEntry.objects.get(kind="charge")
    assert (record.pk, record.user, record.session, record.category) == (
        reply.pk,
        user,
        session,
        session.category,
    )
    assert record.api_key is None
    assert (record.status, record.prompt_tokens, record.completion_tokens, record.cost) == (
        "complete",
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.cost,
    )
    assert reply.cost > 0 and charge.amount == -record.cost
    assert record.hold_id == charge.hold_id  # the link the audit follows
    assert record.created_at == reply.created_at  # dated as the reply, when it began
    assert record.duration_ms is not None
    assert audit() == []


@pytest.mark.parametrize("group_by", ["day", "category", "key"])
def test_usage_is_unchanged_when_a_session_is_deleted(auth_client, user, session, general_category, group_by):
    answered(user, session, "one")
    answered(user, session, "two")
    kept = baker.make(ChatSession, user=user, category=general_category)
    answered(user, kept, "three")
    before = auth_client.get(URL, {"group_by": group_by}).json()
    assert before["totals"]["replies"] == 3

    assert auth_client.delete(f"/api/sessions/{session.id}/").status_code == 204

    assert not Message.objects.filter(session_id=session.id).exists()
    assert auth_client.get(URL, {"group_by": group_by}).json() == before
    assert UsageRecord.objects.filter(session__isnull=True).count() == 2
    assert UsageRecord.objects.aggregate(total=Sum("cost"))["total"] == charged_credits() > 0
    assert audit() == []


def test_the_admin_usage_page_and_the_report_are_unchanged_when_a_session_is_deleted(user, session):
    answered(user, session)
    today = timezone.now().astimezone(dt.UTC).date()

    def reads():
        out = StringIO()
        call_command("usage_report", "--group-by", "category", "--format", "csv", stdout=out)
        spends = admin_selectors.spend_by_day_and_category(start=today, end=today)
        spenders = admin_selectors.top_spenders(start=today, end=today)
        return out.getvalue(), [(s.category.slug, s.credits) for s in spends], [s.credits for s in spenders]

    before = reads()
    session.delete()

    assert reads() == before
    assert before[1] == [("general", charged_credits())]


def test_a_reply_ending_after_its_session_was_deleted_keeps_its_usage(auth_client, user, session):
    plan = reply_begin(user=user, session_id=session.id, content="hi")
    session.delete()  # as the reply streams

    done = reply_finish(plan=plan, content="an answer", usage=None, status="complete")
    again = reply_finish(plan=plan, content="an answer", usage=None, status="complete")  # a second settlement

    record = UsageRecord.objects.get()
    assert (record.pk, record.session, record.category_id, record.cost) == (
        plan.assistant_message_id,
        None,
        session.category_id,
        done.cost,
    )
    assert done.cost > 0 and again.cost == done.cost
    assert charged_credits() == done.cost
    assert auth_client.get(URL).json()["totals"]["cost"] == done.cost
    assert audit() == []


def test_a_reply_closed_as_stale_has_a_failed_record_and_costs_nothing(auth_client, user, session):
    plan = reply_begin(user=user, session_id=session.id, content="hi")
    Message.objects.filter(pk=plan.assistant_message_id).update(
        lease_expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    assert replies_close_stale() == 1

    record = UsageRecord.objects.get()
    assert (record.pk, record.status, record.cost, record.hold_id) == (
        plan.assistant_message_id,
        "failed",
        0,
        plan.hold_id,
    )
    assert auth_client.get(URL).json()["totals"] == {
        "replies": 1,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost": 0,
    }
    # A late finish finds the reply closed: nothing charged, nothing recorded twice.
    reply_finish(plan=plan, content="late", usage=None, status="complete")
    assert UsageRecord.objects.count() == 1
    assert_books_balance(user)


def test_a_failed_reply_is_recorded_and_charged_nothing(user, session):
    answered(user, session, status="failed")

    record = UsageRecord.objects.get()
    assert (record.status, record.cost) == ("failed", 0)
    assert not LedgerEntry.objects.filter(kind="charge").exists()
    assert audit() == []


def test_the_audit_reports_a_charge_without_its_usage_record(user, session):
    answered(user, session)  # recorded: not reported
    with transaction.atomic():
        hold = wallet_hold(user=user, amount=10, description="Reply in nowhere")
    wallet_settle(hold_id=hold.pk, cost=4, description="Reply lost")
    charge = LedgerEntry.objects.get(hold=hold)

    with pytest.raises(CommandError, match="1 problem"):
        call_command("audit_wallets", stdout=StringIO(), stderr=StringIO())
    assert audit() == [
        f"wallet {charge.wallet_id} (alice): charge {charge.pk} of 4 (Reply lost) has no usage record"
    ]


def test_the_audit_reports_a_record_whose_cost_is_not_its_charges(user, session):
    answered(user, session)
    record = UsageRecord.objects.get()
    UsageRecord.objects.filter(pk=record.pk).update(cost=F("cost") + 1)
    charge = LedgerEntry.objects.get(kind="charge")

    [problem] = audit()

    assert re.fullmatch(
        rf"wallet {charge.wallet_id} \(alice\): charge {charge.pk} of {record.cost} \(.*\) "
        rf"has a usage record of {record.cost + 1}",
        problem,
    )


def test_the_audit_reports_a_record_that_cost_credits_no_charge_took(user, general_category):
    record = baker.make(UsageRecord, user=user, category=general_category, status="complete", cost=5)

    assert audit() == [f"user alice: usage record {record.pk} cost 5 and has no charge"]


def test_v1_requests_and_chat_replies_are_both_audited_clean(user, general_category):
    charge_through_services((user,), (general_category,), api_model="general")

    assert UsageRecord.objects.filter(api_key__isnull=False).count() == 1
    assert UsageRecord.objects.filter(api_key__isnull=True).count() == 4  # three replies, one failed
    assert UsageRecord.objects.aggregate(total=Sum("cost"))["total"] == charged_credits() > 0
    assert audit() == []


def test_usage_by_category_puts_a_reply_whose_category_was_not_kept_last(auth_client, user, general_category):
    baker.make(UsageRecord, user=user, category=None, status="complete", cost=2)
    baker.make(UsageRecord, user=user, category=general_category, status="complete", cost=3)

    body = auth_client.get(URL, {"group_by": "category"}).json()

    assert [(row["category"], row["cost"]) for row in body["results"]] == [("general", 3), (None, 2)]
    out = StringIO()
    call_command("usage_report", "--group-by", "category", "--format", "csv", stdout=out)
    assert out.getvalue().splitlines()[1:] == ["general,1,3", "(unknown),1,2"]
    today = timezone.now().astimezone(dt.UTC).date()
    spends = admin_selectors.spend_by_day_and_category(start=today, end=today)
    assert [(spend.category.name, spend.credits) for spend in spends] == [("General", 3), ("Unknown", 2)]


# --- migration 0010 ------------------------------------------------------------------------------

BEFORE = ("chats", "0009_message_finish_reason")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_migration_gives_every_charged_reply_its_record_even_when_its_session_is_gone():
    others = [node for node in MigrationExecutor(connection).loader.graph.leaf_nodes() if node[0] != "chats"]
    old = migrate([BEFORE, *others])
    User, Category_, Session, OldMessage, OldRecord, ApiKey, Wallet, OldHold, Entry = (
        old.get_model(*name.split("."))
        for name in (
            "accounts.User",
            "chats.Category",
            "chats.ChatSession",
            "chats.Message",
            "chats.UsageRecord",
            "accounts.ApiKey",
            "wallets.Wallet",
            "wallets.Hold",
            "wallets.LedgerEntry",
        )
    )
    alice = User.objects.create(login_id="alice", login_key="alice", password="")
    category = Category_.objects.create(slug="old", name="Old", prompt_price=1, completion_price=2)
    chat = Session.objects.create(user=alice, category=category)
    wallet = Wallet.objects.create(user=alice, balance=90)
    began = timezone.now() - dt.timedelta(days=3)

    def charge(amount: int, description: str):
        hold = OldHold.objects.create(
            wallet=wallet, amount=10, status="settled", charged=amount, closed_at=began
        )
        OldHold.objects.filter(pk=hold.pk).update(created_at=began)
        Entry.objects.create(
            wallet=wallet, kind="charge", amount=-amount, balance_after=0, description=description, hold=hold
        )
        return hold

    kept_hold = charge(3, "Reply (kept)")
    kept = OldMessage.objects.create(
        session=chat, role="assistant", status="complete", prompt_tokens=7, completion_tokens=9, cost=3,
        hold_id=kept_hold.pk,
    )  # fmt: skip
    OldMessage.objects.filter(pk=kept.pk).update(created_at=began)
    failed = OldMessage.objects.create(session=chat, role="assistant", status="failed")
    OldMessage.objects.create(session=chat, role="assistant", status="pending")  # still streaming: later
    OldMessage.objects.create(session=chat, role="user", content="a question")  # not a reply
    gone_id = "0b7d6f3e-8c1a-4a5e-9f3b-2d4c6e8a0b1c"
    gone_hold = charge(5, f"Reply {gone_id}")  # its session was deleted: only the ledger remembers
    nameless_hold = charge(2, "a charge that names no reply")
    key = ApiKey.objects.create(user=alice, name="k", prefix="pk-abc", digest="d" * 64)
    request = OldRecord.objects.create(user=alice, api_key=key, category=category, status="complete", cost=0)
    try:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        records = {record.pk: record for record in UsageRecord.objects.all()}
        assert set(records) == {kept.pk, failed.pk, request.pk, uuid.UUID(gone_id), nameless_hold.pk}
        mine = records[kept.pk]
        assert (mine.user_id, mine.session_id, mine.category_id, mine.api_key_id, mine.hold_id) == (
            alice.pk,
            chat.pk,
            category.pk,
            None,
            kept_hold.pk,
        )
        assert (mine.status, mine.prompt_tokens, mine.completion_tokens, mine.cost) == ("complete", 7, 9, 3)
        assert mine.created_at == began
        assert (records[failed.pk].status, records[failed.pk].cost) == ("failed", 0)
        lost = records[uuid.UUID(gone_id)]
        assert (lost.user_id, lost.session_id, lost.category_id, lost.cost, lost.hold_id, lost.status) == (
            alice.pk,
            None,
            None,
            5,
            gone_hold.pk,
            "complete",
        )
        assert lost.created_at == began
        assert records[nameless_hold.pk].cost == 2
        assert records[request.pk].api_key_id == key.pk
        assert [line for line in audit() if "usage record" in line or "no charge" in line] == []

        migrate([BEFORE, *others])  # backwards: the /v1/ request keeps its record, the chat's go
        assert list(old.get_model("chats", "UsageRecord").objects.values_list("pk", flat=True)) == [
            request.pk
        ]
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_the_admin_lists_a_chat_replys_record_with_its_session_then_without(admin_client, user, session):
    answered(user, session)

    listed = admin_client.get("/admin/chats/usagerecord/").context["cl"].result_list
    assert [(record.session, record.api_key) for record in listed] == [(session, None)]
    session.delete()
    listed = admin_client.get("/admin/chats/usagerecord/").context["cl"].result_list
    assert [(record.session, record.cost > 0) for record in listed] == [(None, True)]
