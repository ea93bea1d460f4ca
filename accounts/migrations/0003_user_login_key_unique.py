import django.contrib.auth.validators
from django.db import migrations, models

import accounts.models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_login_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="login_key",
            field=models.CharField(
                editable=False,
                help_text="The login id NFKC-normalised and case folded; set on save, unique.",
                max_length=150,
                unique=True,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="user",
            name="accounts_user_login_id_ci_unique",
        ),
        migrations.AlterField(
            model_name="user",
            name="login_id",
            field=models.CharField(
                help_text="Letters, digits and @/./+/-/_ only; unique ignoring case and width (NFKC).",
                max_length=150,
                unique=True,
                validators=[
                    django.contrib.auth.validators.UnicodeUsernameValidator(),
                    accounts.models.validate_login_key_length,
                ],
            ),
        ),
    ]
