from functools import partial

from django.contrib import admin
from django.urls import path

from chats.catalogue import admin as catalogue_admin  # noqa: F401  (registers providers and models)
from chats.models import Category, ChatSession, Message, UsageRecord
from chats.usage.admin import VIEW_PERMISSION, usage_view


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    """A category names its catalogue model, which sets its prices (Chats → Models)."""

    list_display = ["slug", "name", "model", "prompt_price", "completion_price", "is_active", "order"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active", "model"]
    list_select_related = ["model"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description="Prompt price", ordering="model__prompt_price")
    def prompt_price(self, category: Category):
        return category.model.prompt_price

    @admin.display(description="Completion price", ordering="model__completion_price")
    def completion_price(self, category: Category):
        return category.model.completion_price


class MessageInline(admin.TabularInline):
    model = Message
    fields = [
        "created_at",
        "role",
        "status",
        "content",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "deployment",
    ]
    readonly_fields = fields
    ordering = ["created_at"]
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ChatSession)
class ChatSessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "category", "created_at", "updated_at"]
    list_filter = ["category"]
    search_fields = ["user__login_id", "user__email", "title"]
    list_select_related = ["user", "category"]
    readonly_fields = ["id", "user", "category", "created_at", "updated_at", "last_message_at"]
    fields = ["id", "user", "category", "title", "notes", "created_at", "updated_at", "last_message_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """What each chat reply and ``/v1/`` request used and cost, read-only: the ledger holds the money.

    A chat reply's record has no key; its session is empty once the session is deleted.
    """

    list_display = [
        "created_at",
        "user",
        "api_key",
        "session",
        "category",
        "model",
        "deployment",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "duration_ms",
    ]
    list_filter = ["status", "category", "model", "deployment"]
    search_fields = ["user__login_id", "api_key__prefix", "api_key__name"]
    list_select_related = ["user", "api_key", "session", "category", "model"]
    date_hierarchy = "created_at"

    def get_urls(self):
        usage = path(
            "usage/",
            self.admin_site.admin_view(partial(usage_view, admin_site=self.admin_site)),
            name="chats_usage",
        )
        return [usage, *super().get_urls()]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The staff "Usage" page (chats/usage/admin.py), under Reports on the admin's index (core/admin_site.py).
admin.site.register_report("Usage", url_name="admin:chats_usage", permission=VIEW_PERMISSION)
