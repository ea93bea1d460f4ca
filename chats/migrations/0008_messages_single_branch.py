"""Existing conversations become a single branch: each message's parent is the one before it.

In batches of sessions, each batch its own transaction, so a large table is neither read
into memory at once nor locked for the whole migration. A question and its reply were
stored with one INSERT and may share a timestamp: the question comes first.
"""

from django.db import migrations, transaction
from django.db.models import Case, IntegerField, Value, When

SESSIONS_PER_BATCH = 200


def messages_single_branch(apps, schema_editor):
    ChatSession = apps.get_model("chats", "ChatSession")
    Message = apps.get_model("chats", "Message")
    question_first = Case(When(role="user", then=Value(0)), default=Value(1), output_field=IntegerField())
    after = None
    while True:
        sessions = ChatSession.objects.order_by("pk")
        if after is not None:
            sessions = sessions.filter(pk__gt=after)
        batch = list(sessions.values_list("pk", flat=True)[:SESSIONS_PER_BATCH])
        if not batch:
            return
        after = batch[-1]
        with transaction.atomic():
            rows = (
                Message.objects.filter(session_id__in=batch, parent__isnull=True)
                .annotate(question_first=question_first)
                .order_by("session_id", "created_at", "question_first", "pk")
                .only("pk", "session_id")
            )
            changed, previous = [], None
            for message in rows:
                if previous is not None and previous.session_id == message.session_id:
                    message.parent_id = previous.pk
                    changed.append(message)
                previous = message
            Message.objects.bulk_update(changed, ["parent"], batch_size=1000)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chats", "0007_message_parent"),
    ]

    operations = [
        migrations.RunPython(messages_single_branch, migrations.RunPython.noop, elidable=True),
    ]
