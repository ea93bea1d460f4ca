from decimal import Decimal

from django.db import migrations


def create_general(apps, schema_editor):
    Category = apps.get_model("chats", "Category")
    Category.objects.get_or_create(
        slug="general",
        defaults={
            "name": "General",
            "description": "Ask anything.",
            "system_prompt": "You are a helpful assistant.",
            "prompt_price": Decimal("1"),
            "completion_price": Decimal("2"),
            "is_active": True,
            "order": 0,
        },
    )


def remove_general(apps, schema_editor):
    apps.get_model("chats", "Category").objects.filter(slug="general").delete()


class Migration(migrations.Migration):
    dependencies = [("chats", "0001_initial")]

    operations = [migrations.RunPython(create_general, remove_general)]
