"""Usage records for chat replies too, so that usage outlives sessions as the ledger does.

The schema: a record's ``api_key`` may be null (a chat reply's), it names its ``session`` (null
once deleted), its ``category`` may be null (below), it is dated when the reply began, and there
is one record per hold.

The data: every settled chat reply gets its record (its id the message's, its hold the
message's); then every ``charge`` in the ledger whose hold has no record yet is a reply deleted
with its session before now: its record is recovered from the charge and its hold (user, cost,
date; the reply's id when the charge names it), with no category or tokens, which went with the
session. Afterwards every charge has its record, as ``audit_wallets`` checks.
"""

import re
import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.models import Exists, OuterRef

ROWS_PER_BATCH = 1000

REPLY_ID = re.compile(r"\bReply ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")


def _batches(queryset):
    """``queryset``'s rows (``values()``) by primary key, ``ROWS_PER_BATCH`` at a time."""
    after = None
    while True:
        rows = queryset.order_by("pk") if after is None else queryset.filter(pk__gt=after).order_by("pk")
        batch = list(rows[:ROWS_PER_BATCH])
        if not batch:
            return
        after = batch[-1]["pk"]
        yield batch


def records_for_chat_replies(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Foreign keys checked as each row is written, not at commit: the indexes the schema
        # editor creates after this step could not be made with those checks still pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Message = apps.get_model("chats", "Message")
    UsageRecord = apps.get_model("chats", "UsageRecord")
    LedgerEntry = apps.get_model("wallets", "LedgerEntry")
    replies = (
        Message.objects.filter(role="assistant")
        .exclude(status="pending")
        .exclude(Exists(UsageRecord.objects.filter(pk=OuterRef("pk"))))
        .values(
            "pk",
            "session_id",
            "session__user_id",
            "session__category_id",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "hold_id",
            "created_at",
        )
    )
    for batch in _batches(replies):
        UsageRecord.objects.bulk_create(
            UsageRecord(
                id=row["pk"],
                user_id=row["session__user_id"],
                session_id=row["session_id"],
                category_id=row["session__category_id"],
                status=row["status"],
                prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"],
                cost=row["cost"],
                hold_id=row["hold_id"],
                created_at=row["created_at"],
            )
            for row in batch
        )
    orphaned = (
        LedgerEntry.objects.filter(kind="charge", hold__isnull=False)
        .exclude(Exists(UsageRecord.objects.filter(hold_id=OuterRef("hold_id"))))
        .values("pk", "hold_id", "hold__created_at", "wallet__user_id", "amount", "description")
    )
    for batch in _batches(orphaned):
        records = []
        for row in batch:
            named = REPLY_ID.search(row["description"])
            record_id = uuid.UUID(named[1]) if named else row["hold_id"]
            if UsageRecord.objects.filter(pk=record_id).exists():  # never seen: kept under its hold's id
                record_id = row["hold_id"]
            records.append(
                UsageRecord(
                    id=record_id,
                    user_id=row["wallet__user_id"],
                    status="complete",
                    cost=-row["amount"],
                    hold_id=row["hold_id"],
                    created_at=row["hold__created_at"],
                )
            )
        UsageRecord.objects.bulk_create(records)


def chat_records_removed(apps, schema_editor):
    """Backwards: ``api_key`` is not null again, so only ``/v1/`` requests keep their records."""
    apps.get_model("chats", "UsageRecord").objects.filter(api_key__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_api_key"),
        ("chats", "0009_message_finish_reason"),
        ("wallets", "0003_money_rows_outlive_users"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerecord",
            name="session",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="usage_records",
                to="chats.chatsession",
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="api_key",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="usage_records",
                to="accounts.apikey",
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="category",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="usage_records",
                to="chats.category",
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddConstraint(
            model_name="usagerecord",
            constraint=models.UniqueConstraint(fields=("hold_id",), name="chats_usage_one_per_hold"),
        ),
        migrations.RunPython(records_for_chat_replies, chat_records_removed),
    ]
