import importlib
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from model_bakery import baker

from chats.catalogue.models import Deployment
from chats.llm import Usage
from chats.models import ChatSession, Message
from chats.replies.pricing import reply_cost
from chats.replies.services import reply_begin, reply_finish
from core.errors import NotFound, ValidationFailed
from tests.helpers.catalogue import category_make
from tests.helpers.concurrency import requires_postgres
from wallets.errors import InsufficientFunds
from wallets.models import Hold, Wallet
from wallets.services import wallet_adjust

pytestmark = pytest.mark.django_db


@pytest.fixture
def category(cheap_category):
    return cheap_category


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
def test_empty_message_is_rejected_before_anything_is_stored(session, content):
    with pytest.raises(ValidationFailed) as raised:
        reply_begin(user=session.user, session_id=session.id, content=content)
    assert "content" in raised.value.details
    assert not Message.objects.exists()
    assert not Hold.objects.exists()


@override_settings(MESSAGE_MAX_CHARS=10)
def test_oversize_message_is_rejected_before_anything_is_stored(session):
    with pytest.raises(ValidationFailed):
        reply_begin(user=session.user, session_id=session.id, content="x" * 11)
    assert not Message.objects.exists()
    assert not Hold.objects.exists()


def test_another_users_session_is_not_found(session, other_user):
    with pytest.raises(NotFound):
        reply_begin(user=other_user, session_id=session.id, content="hi")
    assert not Message.objects.exists()


def test_reserve_covers_the_most_the_reply_can_cost(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hello " * 100)
    hold = Hold.objects.get(pk=plan.hold_id)
    assert hold.amount == plan.held
    prompt_bytes = sum(len(m["content"].encode()) for m in plan.prompt)
    worst = reply_cost(
        model=session.category.model, prompt_tokens=prompt_bytes, completion_tokens=plan.max_tokens
    )
    assert plan.held >= worst
    assert Wallet.objects.get(user=session.user).held == plan.held


def test_insufficient_funds_stores_nothing(session):
    wallet_adjust(user=session.user, amount=-100, reason="drain", actor=None)
    with pytest.raises(InsufficientFunds):
        reply_begin(user=session.user, session_id=session.id, content="hi")
    assert not Message.objects.exists()
    assert not Hold.objects.exists()


def test_the_question_is_stored_before_its_reply(session):
    """Both rows go in one INSERT; the history orders by ``created_at``, the question first."""
    for _ in range(20):
        plan = reply_begin(user=session.user, session_id=session.id, content="hi")
        reply = Message.objects.get(pk=plan.assistant_message_id)
        assert plan.user_message.created_at < reply.created_at


def test_message_count_follows_every_stored_message_and_not_a_refused_one(session):
    for status in (Message.Status.COMPLETE, Message.Status.FAILED):
        plan = reply_begin(user=session.user, session_id=session.id, content="hi")
        reply_finish(plan=plan, content="ok", usage=None, status=status)
    wallet_adjust(
        user=session.user, amount=-Wallet.objects.get(user=session.user).balance, reason="drain", actor=None
    )
    with pytest.raises(InsufficientFunds):
        reply_begin(user=session.user, session_id=session.id, content="hi")

    session.refresh_from_db()
    assert session.message_count == Message.objects.filter(session=session).count() == 4


def test_migration_counts_the_messages_that_sessions_already_have(session, user, category):
    counted = importlib.import_module("chats.migrations.0003_session_message_count")
    baker.make(Message, session=session, role="user", _quantity=3)
    empty = baker.make(ChatSession, user=user, category=category, message_count=7)

    counted.count_existing_messages(django_apps, None)

    assert ChatSession.objects.get(pk=session.pk).message_count == 3
    assert ChatSession.objects.get(pk=empty.pk).message_count == 0


def test_finish_failed_charges_nothing_and_releases(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    result = reply_finish(plan=plan, content="", usage=None, status=Message.Status.FAILED)
    assert result.cost == 0
    assert result.balance == 100
    assert Hold.objects.get(pk=plan.hold_id).status == Hold.Status.RELEASED
    assert Message.objects.get(pk=plan.assistant_message_id).status == "failed"


def test_finish_never_charges_more_than_was_held(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    huge = Usage(prompt_tokens=10**7, completion_tokens=10**7)
    result = reply_finish(plan=plan, content="big", usage=huge, status=Message.Status.COMPLETE)
    assert result.cost == plan.held
    assert Wallet.objects.get(user=session.user).balance == 100 - plan.held


def test_finish_is_charged_once_even_if_called_twice(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    usage = Usage(prompt_tokens=900, completion_tokens=900)
    reply_finish(plan=plan, content="ok", usage=usage, status=Message.Status.COMPLETE)
    reply_finish(plan=plan, content="ok", usage=usage, status=Message.Status.COMPLETE)
    assert Wallet.objects.get(user=session.user).balance == 100 - 2
    assert session.user.wallet.entries.filter(kind="charge").count() == 1


def test_stale_pending_reply_is_closed_and_its_late_finish_charges_nothing(session):
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    # Its process died: nobody renewed the lease.
    Message.objects.filter(pk=plan.assistant_message_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    Hold.objects.filter(pk=plan.hold_id).update(created_at=timezone.now() - timedelta(hours=1))
    from django.core.management import call_command

    call_command("release_stale_holds", "--minutes", "15")
    assert Message.objects.get(pk=plan.assistant_message_id).status == "failed"
    result = reply_finish(
        plan=plan, content="late", usage=Usage(prompt_tokens=500, completion_tokens=500), status="complete"
    )
    assert result.cost == 0
    assert Message.objects.get(pk=plan.assistant_message_id).status == "failed"
    assert Wallet.objects.get(user=session.user).balance == 100
    call_command("audit_wallets")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_replies_never_reserve_more_than_the_wallet_holds(make_user):
    user = make_user("racer")
    category = category_make("pricey", prompt_price=0, completion_price=Decimal("40"))
    session = baker.make(ChatSession, user=user, category=category)
    # Each reply may cost ceil(256 * 40 / 1000) = 11 credits: 100 credits cover 9 of them.
    barrier = threading.Barrier(16)
    outcomes: list[str] = []

    def attempt():
        try:
            barrier.wait()
            reply_begin(user=user, session_id=session.id, content="go")
            outcomes.append("reserved")
        except InsufficientFunds:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    # Once around all the threads: override_settings is process-wide, and a
    # thread leaving it would restore the default for the others.
    # No shorter replies for the last credit: each reply reserves its worst case or nothing.
    with override_settings(LLM_MAX_TOKENS=256, MIN_REPLY_TOKENS=256):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count("reserved") == 9
    assert outcomes.count("refused") == 7
    wallet = Wallet.objects.get(user=user)
    assert wallet.held == 99
    assert wallet.balance - wallet.held == 1
    assert Message.objects.filter(session=session, role="assistant", status="pending").count() == 9


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_settling_a_reply_does_not_wait_for_a_question_continuing_from_it(session):
    """A question continuing from the reply holds a KEY SHARE lock on it until it commits (its
    foreign key), while holding the wallet row that the settlement needs: the settlement's lock on
    the reply must not conflict with it (FOR UPDATE did, and the race soak found the deadlock)."""
    from django.db import connections

    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    outcome = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            table = Message._meta.db_table
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR KEY SHARE", [plan.assistant_message_id])

        def settle() -> None:
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute("SET lock_timeout = '3s'")
                done = reply_finish(plan=plan, content="ok", usage=None, status="complete")
                outcome.append(done.message.status)
            except Exception as exc:
                outcome.append(exc)
            finally:
                connections["default"].close()

        thread = threading.Thread(target=settle)
        thread.start()
        thread.join(timeout=10)
    assert outcome == ["complete"]


def test_settling_a_reply_reads_no_user_row(session):
    """The plan knows its user from the reservation; the settlement does not fetch it again."""
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    with CaptureQueriesContext(connection) as captured:
        reply_finish(plan=plan, content="ok", usage=None, status=Message.Status.COMPLETE)
    user_table = session.user._meta.db_table
    assert [q["sql"] for q in captured.captured_queries if f'FROM "{user_table}"' in q["sql"]] == []


def test_a_reply_is_settled_in_a_fixed_handful_of_statements(session):
    """The reply claimed by its own UPDATE (no SELECT first), then the hold, the wallet, the charge,
    the session and the usage record."""
    plan = reply_begin(user=session.user, session_id=session.id, content="hi")
    with CaptureQueriesContext(connection) as captured:
        done = reply_finish(plan=plan, content="ok", usage=None, status=Message.Status.COMPLETE)
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == [
        "UPDATE",
        "UPDATE",
        "UPDATE",
        "INSERT",
        "UPDATE",
        "INSERT",
    ]
    stored = Message.objects.get(pk=plan.assistant_message_id)
    assert (stored.content, stored.status, stored.cost) == ("ok", "complete", done.cost)
    assert done.message.created_at == stored.created_at  # the row as stored, for the done event


@pytest.fixture
def billing(user):
    """A titled session in a category with a model of its own."""
    support = category_make(
        "support",
        name="Support",
        model_id="llama3",
        upstream_model="llama3-8b",
        prompt_price=Decimal("0.01"),
        completion_price=Decimal("0.01"),
    )
    return baker.make(ChatSession, user=user, category=support, title="Billing question")


def _charge_description(user) -> str:
    from wallets.models import LedgerEntry

    return LedgerEntry.objects.get(wallet__user=user, kind=LedgerEntry.Kind.CHARGE).description


def _reply(session, content: str = "Why was I charged twice?"):
    plan = reply_begin(user=session.user, session_id=session.id, content=content)
    usage = Usage(prompt_tokens=200, completion_tokens=300)
    reply_finish(plan=plan, content="Sorry!", usage=usage, status=Message.Status.COMPLETE)
    return plan


def test_a_reply_charge_names_the_session_the_category_and_the_model(billing):
    plan = _reply(billing)

    assert _charge_description(billing.user) == (
        f'Reply {plan.assistant_message_id} in "Billing question" (Support, model llama3)'
    )


@override_settings(LLM_MODEL="house-model")
def test_an_untitled_sessions_charge_names_the_title_its_question_gave_it(billing):
    ChatSession.objects.filter(pk=billing.pk).update(title="")
    Deployment.objects.filter(model__categories=billing.category_id).update(upstream_model="")  # LLM_MODEL

    plan = _reply(ChatSession.objects.get(pk=billing.pk), content="  What is the capital of Peru?")

    assert ChatSession.objects.get(pk=billing.pk).title == "What is the capital of Peru?"
    assert _charge_description(billing.user) == (
        f'Reply {plan.assistant_message_id} in "What is the capital of Peru?" (Support, model llama3)'
    )


def test_a_long_title_is_shortened_so_that_the_charge_still_names_the_category_and_model(billing):
    ChatSession.objects.filter(pk=billing.pk).update(title="Invoice " * 25)

    plan = _reply(billing)

    description = _charge_description(billing.user)
    assert len(description) == 255  # the ledger's description, full
    assert description.startswith(f'Reply {plan.assistant_message_id} in "Invoice Invoice ')
    assert description.endswith('…" (Support, model llama3)')
