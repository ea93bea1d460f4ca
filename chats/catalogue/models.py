"""Providers, the model catalogue and deployments.

A *model* is what a client names (``model`` on ``/v1/``, or a category's model on the chat API)
and what it is charged for: its prices live here, not on the category. A *deployment* serves a
model on a *provider* under the upstream's own model name. The settings (``LLM_PROVIDER``,
``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``LLM_MODEL``) describe the *default provider*: a
deployment with no provider is served by it, and a deployment with no upstream model name asks
for ``LLM_MODEL``, so a laptop with nothing set, and a deployment configured by those settings
alone, keep working after ``migrate`` with no admin step (migration 0011 gives each category
its model, deployed so).

A provider's key is never stored: ``api_key_env`` names the environment variable that holds it.
"""

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

#: What a model's public id may hold: what clients type as ``model`` (and a ``/v1/models/{id}`` path).
PUBLIC_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def validate_base_url(value: str) -> None:
    """An ``http``/``https`` URL with a host; any host name (a container's ``vllm:8000`` too)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL, such as http://vllm.internal:8000/v1.")


class Provider(models.Model):
    """An upstream: an OpenAI-compatible server (``openai``) or the offline ``echo`` model."""

    class Kind(models.TextChoices):
        OPENAI = "openai"
        ECHO = "echo"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_base_url],
        help_text="Blank means the client's default (OpenAI's API).",
    )
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        blank=True,
        validators=[
            RegexValidator(ENV_NAME_PATTERN, "Enter an environment variable's name, such as MAIN_KEY.")
        ],
        help_text="The name of the environment variable that holds the key (never the key). Blank: no key.",
    )
    timeout = models.FloatField(default=60.0, help_text="Seconds, to connect and between two chunks.")
    retries = models.PositiveSmallIntegerField(default=2, help_text="Retries before the first token.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(timeout__gt=0), name="chats_provider_timeout_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key_is_set(self) -> bool:
        """Whether this process's environment holds the key (what the admin shows instead of it)."""
        return bool(self.api_key_env and os.environ.get(self.api_key_env))

    def api_key(self) -> str:
        """The key, read from the environment when needed; never stored, never shown."""
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""


class CatalogueModel(models.Model):
    """What clients ask for and pay for: prices in credits per 1,000 tokens (decimals allowed, so
    that cheap models are priced fairly, while charges stay whole credits)."""

    public_id = models.CharField(
        "id",
        max_length=200,
        unique=True,
        validators=[RegexValidator(PUBLIC_ID_PATTERN, "Letters, digits and . _ : @ - only.")],
        help_text="What clients send as model, such as gpt-4o-mini.",
    )
    name = models.CharField(max_length=100)
    prompt_price = models.DecimalField(
        max_digits=10, decimal_places=4, help_text="Credits per 1,000 prompt tokens."
    )
    completion_price = models.DecimalField(
        max_digits=10, decimal_places=4, help_text="Credits per 1,000 completion tokens."
    )
    media_part_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Prompt tokens reserved per image, audio or file part; blank: MEDIA_PART_TOKENS.",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most completion tokens per reply; blank: LLM_MAX_TOKENS."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens; blank: unknown.")
    supports_tools = models.BooleanField("tools", default=True)
    supports_images = models.BooleanField("images", default=True)
    supports_json_schema = models.BooleanField("JSON schema", default=True)
    drop_params = models.JSONField(
        default=list,
        blank=True,
        help_text='Request parameters never forwarded upstream, such as ["logprobs"].',
    )
    is_active = models.BooleanField(
        default=True,
        help_text="Listed on /v1/models and requestable by its id; categories naming it keep working.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["public_id"]
        verbose_name = "model"
        constraints = [
            models.CheckConstraint(
                condition=Q(prompt_price__gte=0) & Q(completion_price__gte=0),
                name="chats_model_prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id if self.name in ("", self.public_id) else f"{self.public_id} ({self.name})"

    def clean(self) -> None:
        if not isinstance(self.drop_params, list) or not all(
            isinstance(p, str) and p for p in self.drop_params
        ):
            raise ValidationError({"drop_params": 'A list of parameter names, such as ["logprobs"].'})

    @property
    def media_part_bound(self) -> int:
        """Prompt tokens a request reserves per media part."""
        return settings.MEDIA_PART_TOKENS if self.media_part_tokens is None else self.media_part_tokens


class Deployment(models.Model):
    """A model served on a provider: tried by ``priority`` (lower first), by ``weight`` within one.

    No provider means the default provider (the settings); no upstream model name means ``LLM_MODEL``.
    """

    model = models.ForeignKey(CatalogueModel, on_delete=models.CASCADE, related_name="deployments")
    provider = models.ForeignKey(
        Provider,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
        help_text="Blank: the default provider (LLM_PROVIDER, OPENAI_BASE_URL, OPENAI_API_KEY).",
    )
    upstream_model = models.CharField(
        max_length=200, blank=True, help_text="The model's name on the provider; blank: LLM_MODEL."
    )
    priority = models.PositiveSmallIntegerField(default=1, help_text="Lower first.")
    weight = models.PositiveIntegerField(default=1, help_text="Share of requests within one priority.")

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(weight__gte=1), name="chats_deployment_weight_positive"),
        ]

    def __str__(self) -> str:
        provider = self.provider.name if self.provider_id else "default provider"
        return f"{self.upstream_name} on {provider}"

    @property
    def upstream_name(self) -> str:
        return self.upstream_model or settings.LLM_MODEL
