"""Deleting a user (or a wallet) never deletes money rows: ``PROTECT`` instead of cascading.

Django enforces ``on_delete``, so the schema does not change; deleting a user
who has a wallet now raises ``ProtectedError``, and so does deleting a staff
member who made ledger entries (``SET_NULL`` would have rewritten them).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0002_ledger_key_scope"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="wallet",
            name="user",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.PROTECT, related_name="wallet", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="wallet",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="entries", to="wallets.wallet"
            ),
        ),
        migrations.AlterField(
            model_name="hold",
            name="wallet",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="holds", to="wallets.wallet"
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                help_text="The staff member who made this entry, if one did.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
