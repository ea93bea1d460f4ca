"""Login ids become unique by their key (NFKC, case folded), computed in Python on every database.

The old ``LOWER(login_id)`` constraint folded only ASCII on SQLite and no width
anywhere. Existing users get their key here; two users whose ids already share
a key stop the migration with their names, for an operator to rename one.
"""

import unicodedata
from collections import defaultdict

from django.db import migrations, models


def _login_key(login_id: str) -> str:
    # A copy of accounts.models.login_key as it is today: migrations do not import live code.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", login_id).casefold())


def fill_login_keys(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    by_key = defaultdict(list)
    for pk, login_id in User.objects.order_by("pk").values_list("pk", "login_id").iterator():
        by_key[_login_key(login_id)].append(login_id)
    clashes = [ids for ids in by_key.values() if len(ids) > 1]
    if clashes:
        listed = "; ".join(", ".join(repr(i) for i in ids) for ids in clashes)
        raise RuntimeError(
            f"These login ids are the same account once normalised (NFKC, case folded): {listed}. "
            "Rename all but one of each group, then migrate again."
        )
    for key, (login_id,) in by_key.items():
        User.objects.filter(login_id=login_id).update(login_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="login_key",
            field=models.CharField(editable=False, max_length=150, null=True),
        ),
        migrations.RunPython(fill_login_keys, migrations.RunPython.noop, elidable=True),
    ]
