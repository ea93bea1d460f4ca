"""The catalogue in the admin: providers, models with their deployments inline.

A provider's key is never shown, nor stored: only the name of the environment variable that
holds it, and whether this process sees it set. Registered by ``chats.admin``, under Chats on
the admin's index (``core.admin_site``); superusers edit them (the support role has no
permission on them, ``accounts.roles``).
"""

from django.contrib import admin
from django.db.models import Count

from chats.catalogue.models import CatalogueModel, Deployment, Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "base_url", "api_key_env", "key_set", "timeout", "retries", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "base_url"]
    fields = ["name", "kind", "base_url", "api_key_env", "key_set", "timeout", "retries", "is_active"]
    readonly_fields = ["key_set"]

    @admin.display(boolean=True, description="Key set")
    def key_set(self, provider: Provider) -> bool:
        """Whether the variable is set in this process's environment: the key itself is never shown."""
        return provider.api_key_is_set


class DeploymentInline(admin.TabularInline):
    model = Deployment
    fields = ["provider", "upstream_model", "priority", "weight"]
    extra = 0


@admin.register(CatalogueModel)
class CatalogueModelAdmin(admin.ModelAdmin):
    list_display = ["public_id", "name", "prompt_price", "completion_price", "deployment_count", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["public_id", "name"]
    inlines = [DeploymentInline]
    fieldsets = [
        (None, {"fields": ["public_id", "name", "is_active"]}),
        ("Prices (credits per 1,000 tokens)", {"fields": ["prompt_price", "completion_price"]}),
        ("Limits", {"fields": ["max_output_tokens", "context_window", "media_part_tokens"]}),
        (
            "Capabilities",
            {"fields": ["supports_tools", "supports_images", "supports_json_schema", "drop_params"]},
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(deployment_total=Count("deployments"))

    @admin.display(description="Deployments", ordering="deployment_total")
    def deployment_count(self, model: CatalogueModel) -> int:
        return model.deployment_total
