"""The model catalogue: providers, models (with the prices categories had) and deployments.

The schema: the catalogue's three tables; a category names a catalogue model (``model``, which
was the upstream model's name) and loses its prices; a usage record names the model that priced it.

The data: each category becomes one catalogue model with its prices, deployed once on the default
provider (no provider: the settings) under the category's model name (blank: ``LLM_MODEL``), so
that every reply is asked of the same upstream model and costs what it cost before. The model's
public id is the category's model name when that name is set, a valid id, no other category's
model name and no other category's slug; else the category's slug (a ``/v1/`` request naming it
still means the category, its system prompt included). Its name is that model name, or else the
category's name; it is active as its category is. Usage records take their category's model.

Backwards, each category takes back its model's prices and its first deployment's model name.
"""

import re
from collections import Counter

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import chats.catalogue.models

PUBLIC_ID = re.compile(chats.catalogue.models.PUBLIC_ID_PATTERN)


def _public_ids(categories) -> dict:
    """Each category's catalogue id: its model name when usable (above), else its slug."""
    slugs = {category.slug for category in categories}
    names = Counter(category.legacy_model for category in categories if category.legacy_model)
    ids = {}
    for category in categories:
        name = category.legacy_model
        usable = (
            name
            and names[name] == 1
            and len(name) <= 200
            and PUBLIC_ID.match(name)
            and (name not in slugs or name == category.slug)
        )
        ids[category.pk] = name if usable else category.slug
    return ids


def catalogue_from_categories(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Foreign keys checked as each row is written, not at commit: the category table is
        # altered after this step, which PostgreSQL refuses with checks still pending.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Category = apps.get_model("chats", "Category")
    CatalogueModel = apps.get_model("chats", "CatalogueModel")
    Deployment = apps.get_model("chats", "Deployment")
    UsageRecord = apps.get_model("chats", "UsageRecord")
    categories = list(Category.objects.order_by("pk"))
    ids = _public_ids(categories)
    for category in categories:
        public_id = ids[category.pk]
        model = CatalogueModel.objects.create(
            public_id=public_id,
            name=(category.legacy_model if public_id == category.legacy_model else category.name)[:100],
            prompt_price=category.prompt_price,
            completion_price=category.completion_price,
            is_active=category.is_active,
            created_at=category.created_at,
        )
        Deployment.objects.create(model=model, provider=None, upstream_model=category.legacy_model)
        Category.objects.filter(pk=category.pk).update(model=model)
        UsageRecord.objects.filter(category_id=category.pk).update(model=model)


def categories_from_catalogue(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Category = apps.get_model("chats", "Category")
    Deployment = apps.get_model("chats", "Deployment")
    for category in Category.objects.select_related("model"):
        first = Deployment.objects.filter(model_id=category.model_id).order_by("priority", "pk").first()
        Category.objects.filter(pk=category.pk).update(
            prompt_price=category.model.prompt_price,
            completion_price=category.model.completion_price,
            legacy_model=first.upstream_model if first is not None else "",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0010_usage_records_for_chat_replies"),
    ]

    operations = [
        migrations.CreateModel(
            name="Provider",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, unique=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[("openai", "Openai"), ("echo", "Echo")], default="openai", max_length=16
                    ),
                ),
                (
                    "base_url",
                    models.CharField(
                        blank=True,
                        help_text="Blank means the client's default (OpenAI's API).",
                        max_length=500,
                        validators=[chats.catalogue.models.validate_base_url],
                    ),
                ),
                (
                    "api_key_env",
                    models.CharField(
                        blank=True,
                        help_text=(
                            "The name of the environment variable that holds the key (never the key). Blank: no key."
                        ),
                        max_length=100,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Za-z_][A-Za-z0-9_]*$",
                                "Enter an environment variable's name, such as MAIN_KEY.",
                            )
                        ],
                        verbose_name="API key variable",
                    ),
                ),
                (
                    "timeout",
                    models.FloatField(default=60.0, help_text="Seconds, to connect and between two chunks."),
                ),
                (
                    "retries",
                    models.PositiveSmallIntegerField(default=2, help_text="Retries before the first token."),
                ),
                ("is_active", models.BooleanField(default=True)),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("timeout__gt", 0)), name="chats_provider_timeout_positive"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="CatalogueModel",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "public_id",
                    models.CharField(
                        help_text="What clients send as model, such as gpt-4o-mini.",
                        max_length=200,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Za-z0-9][A-Za-z0-9._:@-]*$", "Letters, digits and . _ : @ - only."
                            )
                        ],
                        verbose_name="id",
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "prompt_price",
                    models.DecimalField(
                        decimal_places=4, help_text="Credits per 1,000 prompt tokens.", max_digits=10
                    ),
                ),
                (
                    "completion_price",
                    models.DecimalField(
                        decimal_places=4, help_text="Credits per 1,000 completion tokens.", max_digits=10
                    ),
                ),
                (
                    "media_part_tokens",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Prompt tokens reserved per image, audio or file part; blank: MEDIA_PART_TOKENS.",
                        null=True,
                    ),
                ),
                (
                    "max_output_tokens",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="Most completion tokens per reply; blank: LLM_MAX_TOKENS.",
                        null=True,
                    ),
                ),
                (
                    "context_window",
                    models.PositiveIntegerField(blank=True, help_text="Tokens; blank: unknown.", null=True),
                ),
                ("supports_tools", models.BooleanField(default=True, verbose_name="tools")),
                ("supports_images", models.BooleanField(default=True, verbose_name="images")),
                ("supports_json_schema", models.BooleanField(default=True, verbose_name="JSON schema")),
                (
                    "drop_params",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text='Request parameters never forwarded upstream, such as ["logprobs"].',
                    ),
                ),
                (
                    "is_active",
                    models.BooleanField(
                        default=True,
                        help_text="Listed on /v1/models and requestable by its id; categories naming it keep working.",
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                "verbose_name": "model",
                "ordering": ["public_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("prompt_price__gte", 0), ("completion_price__gte", 0)),
                        name="chats_model_prices_not_negative",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Deployment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "upstream_model",
                    models.CharField(
                        blank=True,
                        help_text="The model's name on the provider; blank: LLM_MODEL.",
                        max_length=200,
                    ),
                ),
                ("priority", models.PositiveSmallIntegerField(default=1, help_text="Lower first.")),
                (
                    "weight",
                    models.PositiveIntegerField(
                        default=1, help_text="Share of requests within one priority."
                    ),
                ),
                (
                    "model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deployments",
                        to="chats.cataloguemodel",
                    ),
                ),
                (
                    "provider",
                    models.ForeignKey(
                        blank=True,
                        help_text="Blank: the default provider (LLM_PROVIDER, OPENAI_BASE_URL, OPENAI_API_KEY).",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deployments",
                        to="chats.provider",
                    ),
                ),
            ],
            options={
                "ordering": ["priority", "id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("weight__gte", 1)), name="chats_deployment_weight_positive"
                    )
                ],
            },
        ),
        # The category's upstream model name, kept aside for the data step, then dropped.
        migrations.RenameField(model_name="category", old_name="model", new_name="legacy_model"),
        migrations.AddField(
            model_name="category",
            name="model",
            field=models.ForeignKey(
                help_text="What answers in this category, and at what price.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="categories",
                to="chats.cataloguemodel",
            ),
        ),
        # Nullable before the data step, so that going backwards can add them back, then fill them.
        migrations.AlterField(
            model_name="category",
            name="prompt_price",
            field=models.DecimalField(decimal_places=4, max_digits=10, null=True),
        ),
        migrations.AlterField(
            model_name="category",
            name="completion_price",
            field=models.DecimalField(decimal_places=4, max_digits=10, null=True),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="model",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="usage_records",
                to="chats.cataloguemodel",
            ),
        ),
        migrations.RunPython(catalogue_from_categories, categories_from_catalogue),
        migrations.RemoveConstraint(model_name="category", name="chats_category_prices_not_negative"),
        migrations.RemoveField(model_name="category", name="prompt_price"),
        migrations.RemoveField(model_name="category", name="completion_price"),
        migrations.RemoveField(model_name="category", name="legacy_model"),
        migrations.AlterField(
            model_name="category",
            name="model",
            field=models.ForeignKey(
                help_text="What answers in this category, and at what price.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="categories",
                to="chats.cataloguemodel",
            ),
        ),
    ]
