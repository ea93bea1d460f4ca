"""Idempotency keys live in a scope: the system's (the bonus) apart from the callers'.

Before, one unique key column held both, so an operator could take
``bonus:<next user id>`` and make the next sign-up fail. Existing keys keep
working: the bonus entries' keys become ``system``, every other key
``caller``, with the text unchanged (an operator's earlier ``bonus:…`` key is
a caller key from now on and no longer blocks a bonus).
"""

from django.db import migrations, models


def scope_existing_keys(apps, schema_editor):
    LedgerEntry = apps.get_model("wallets", "LedgerEntry")
    keyed = LedgerEntry.objects.filter(idempotency_key__isnull=False)
    keyed.filter(kind="bonus").update(key_scope="system")
    keyed.exclude(kind="bonus").update(key_scope="caller")


def unscope_keys(apps, schema_editor):
    LedgerEntry = apps.get_model("wallets", "LedgerEntry")
    LedgerEntry.objects.update(key_scope="")


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerentry",
            name="key_scope",
            field=models.CharField(
                blank=True,
                choices=[
                    ("system", "Made by Parley (the sign-up bonus)"),
                    ("caller", "Given by the caller (an operator, staff, a client)"),
                ],
                default="",
                help_text="Empty when there is no key.",
                max_length=8,
            ),
        ),
        migrations.RunPython(scope_existing_keys, unscope_keys, elidable=False),
        migrations.AlterField(
            model_name="ledgerentry",
            name="idempotency_key",
            field=models.CharField(
                blank=True,
                help_text="Unique within its scope: the entry is made once.",
                max_length=200,
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("idempotency_key__isnull", True), ("key_scope", "")),
                    models.Q(("idempotency_key__isnull", False), ("key_scope__in", ["system", "caller"])),
                    _connector="OR",
                ),
                name="wallets_ledgerentry_key_has_a_scope",
            ),
        ),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=("key_scope", "idempotency_key"), name="wallets_ledgerentry_key_unique_in_scope"
            ),
        ),
    ]
