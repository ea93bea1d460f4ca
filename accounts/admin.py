"""Support staff find users, edit profiles, and deactivate accounts here."""

from allauth.socialaccount.models import SocialAccount
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from accounts import services
from accounts.models import User

LOGIN_ID_TAKEN = "A user with that login id already exists (login ids ignore case)."


def _clean_login_id(form: forms.ModelForm) -> str:
    """Django's forms check ``username`` case-insensitively; this model's field is ``login_id``."""
    login_id = form.cleaned_data["login_id"]
    others = User.objects.filter(login_id__iexact=login_id)
    if form.instance.pk is not None:
        others = others.exclude(pk=form.instance.pk)
    if others.exists():
        raise forms.ValidationError(LOGIN_ID_TAKEN, code="unique")
    return login_id


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("login_id", "email", "display_name")

    def clean_login_id(self) -> str:
        return _clean_login_id(self)


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_login_id(self) -> str:
        return _clean_login_id(self)


class SocialAccountInline(admin.TabularInline):
    """Which Google account signs in as this user (linked by Google's ``sub``)."""

    model = SocialAccount
    fields = ("provider", "uid", "date_joined", "last_login")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "linked sign-in accounts"

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("login_id", "password")}),
        ("Profile", {"fields": ("display_name", "email", "wallet_link")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("login_id", "email", "display_name", "usable_password", "password1", "password2"),
            },
        ),
    )
    readonly_fields = ("wallet_link", "last_login", "date_joined")
    list_display = ("login_id", "email", "display_name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("login_id", "email", "display_name")
    ordering = ("-date_joined",)
    inlines = (SocialAccountInline,)
    actions = ("deactivate_users", "activate_users")

    def get_inlines(self, request: HttpRequest, obj):
        return self.inlines if obj is not None else ()

    @admin.display(description="wallet")
    def wallet_link(self, user: User) -> str:
        wallet = getattr(user, "wallet", None) if user.pk else None
        if wallet is None:
            return "—"
        try:
            opts = wallet._meta
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[wallet.pk])
        except NoReverseMatch:
            return str(wallet)
        return format_html('<a href="{}">{}</a>', url, wallet)

    @admin.action(description="Deactivate selected users (and end their sessions)", permissions=["change"])
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if queryset.filter(pk=request.user.pk).exists():
            queryset = queryset.exclude(pk=request.user.pk)
            self.message_user(request, "You cannot deactivate your own account.", messages.WARNING)
        count = services.users_deactivate(users=queryset)
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected users", permissions=["change"])
    def activate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = services.users_activate(users=queryset)
        self.message_user(request, f"Reactivated {count} user(s).", messages.SUCCESS)
