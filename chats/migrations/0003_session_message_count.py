from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce


def count_existing_messages(apps, schema_editor) -> None:
    """Start the counter at the number of messages each session already has."""
    ChatSession = apps.get_model("chats", "ChatSession")
    Message = apps.get_model("chats", "Message")
    counts = Message.objects.filter(session=OuterRef("pk")).order_by().values("session")
    counts = counts.annotate(n=Count("pk")).values("n")
    ChatSession.objects.update(message_count=Coalesce(Subquery(counts), 0))


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0002_general_category"),
    ]

    operations = [
        migrations.AddField(
            model_name="chatsession",
            name="message_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_existing_messages, migrations.RunPython.noop),
    ]
