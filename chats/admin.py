from django.contrib import admin

from chats.models import Category, ChatSession, Message


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "model", "prompt_price", "completion_price", "is_active", "order"]
    list_editable = ["is_active", "order"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "status", "content", "prompt_tokens", "completion_tokens", "cost"]
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
