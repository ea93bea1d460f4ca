"""Support staff find users, edit profiles, deactivate accounts and revoke API keys here.

Accounts are deactivated, never deleted: a user's wallet and its ledger must
outlive them, so the admin offers no delete for a user who has a wallet.

Staff accounts are the administrators' (superusers'): other staff, such as the
support role (``accounts.roles``), see them but cannot edit, deactivate or
reactivate them, nor make anyone staff or give out groups and permissions.
"""

import math

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts import services
from accounts.models import ApiKey, User
from accounts.selectors import login_id_taken
from accounts.throttles import AdminLoginThrottle

LOGIN_ID_TAKEN = "A user with that login id already exists (login ids ignore case and width)."
STAFF_LEFT_ALONE = (
    "Only administrators can deactivate or reactivate staff accounts: {count} left as they were."
)
# Fields only a superuser may change: who is staff, and what they may do.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")
DEACTIVATE_INSTEAD = (
    "{user} has a wallet, so the account cannot be deleted: its ledger must be kept. "
    "Deactivate the account instead (untick Active, or use the Deactivate action on the list)."
)

# allauth's models that Parley does not use, out of the admin: sign-in is by login id or a Google ID
# token checked against GOOGLE_CLIENT_ID (accounts.google), so no e-mail address is ever stored and
# no provider token kept, and a social app added here would be a second visible Google app beside
# the settings' one, which allauth refuses (MultipleObjectsReturned) wherever it looks a linked
# account's app up. Social accounts (the Google links) stay: under Access, and inline on each user.
for _model in (EmailAddress, SocialApp, SocialToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def _clean_login_id(form: forms.ModelForm) -> str:
    """Django's forms check ``username`` case-insensitively; this model's field is ``login_id``."""
    login_id = form.cleaned_data["login_id"]
    if login_id_taken(login_id, exclude_pk=form.instance.pk):
        raise forms.ValidationError(LOGIN_ID_TAKEN, code="unique")
    return login_id


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("login_id", "email", "display_name")
        field_classes = {"login_id": auth_forms.UsernameField}  # NFKC, as Django does for ``username``

    def clean_login_id(self) -> str:
        return _clean_login_id(self)


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes = {"login_id": auth_forms.UsernameField}

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

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        """Whoever may see the user sees their links: support holds no permission on allauth's model."""
        return request.user.has_perm("accounts.view_user") or super().has_view_permission(request, obj)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("login_id", "password")}),
        ("Profile", {"fields": ("display_name", "email", "wallet_link")}),
        (
            "Permissions",
            {
                "description": "To close an account, untick Active: accounts are deactivated, not "
                "deleted, so that their wallet and ledger are kept.",
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
            },
        ),
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

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if request.user.is_superuser else (*readonly, *PRIVILEGE_FIELDS)

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        # Its form, and its password page: a staff account is read-only to other staff.
        if obj is not None and _is_staff(obj) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict:
        # Bulk delete would take wallets and their ledgers with the users: deactivate instead.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and _has_wallet(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        """Explain, rather than answer 403, why a user with a wallet has no delete."""
        user = self.get_object(request, unquote(object_id))
        if user is not None and _has_wallet(user) and super().has_delete_permission(request, user):
            self.message_user(request, DEACTIVATE_INSTEAD.format(user=user), messages.ERROR)
            return redirect(reverse("admin:accounts_user_change", args=[user.pk]))
        return super().delete_view(request, object_id, extra_context)

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
        queryset = self._customers_unless_superuser(request, queryset)
        count = services.users_deactivate(users=queryset)
        self.message_user(request, f"Deactivated {count} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected users", permissions=["change"])
    def activate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        queryset = self._customers_unless_superuser(request, queryset)
        count = services.users_activate(users=queryset)
        self.message_user(request, f"Reactivated {count} user(s).", messages.SUCCESS)

    def _customers_unless_superuser(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if request.user.is_superuser:
            return queryset
        staff = Q(is_staff=True) | Q(is_superuser=True)
        if left := queryset.filter(staff).count():
            self.message_user(request, STAFF_LEFT_ALONE.format(count=left), messages.WARNING)
        return queryset.exclude(staff)


def _is_staff(user: User) -> bool:
    return user.is_staff or user.is_superuser


def _has_wallet(user: User) -> bool:
    # The reverse one-to-one from wallets (which accounts must not import).
    return user.pk is not None and hasattr(user, "wallet")


def admin_login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin site's login page, refusing (429) an address or a login id with too many failures.

    Mounted at ``/admin/login/`` ahead of ``admin.site.urls``. Only failed
    attempts count, per address and per login id, at ``AUTH_THROTTLE_RATE`` in
    the same cache as the API's throttles.
    """
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    throttles = [AdminLoginThrottle("admin_login_ip", request)]
    login_id = request.POST.get("username", "")
    if login_id:
        throttles.append(AdminLoginThrottle("admin_login_id", request, login_id))
    waits = [throttle.wait() or 0 for throttle in throttles if throttle.over_limit()]
    if waits:
        retry_after = max(1, math.ceil(max(waits)))
        body = format_html(
            "<!doctype html><title>Too many failed logins</title><h1>Too many failed logins</h1>"
            "<p>Try again in {} seconds.</p>",
            retry_after,
        )
        return HttpResponse(body, status=429, headers={"Retry-After": str(retry_after)})
    response = admin.site.login(request, extra_context)
    if response.status_code != 302:  # the form came back: the login failed
        for throttle in throttles:
            throttle.record_failure()
    return response


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [("live", "live"), ("revoked", "revoked"), ("expired", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        if self.value() == "live":
            return queryset.live(now=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Staff see users' API keys and revoke them; users create them (no add), and keys are never deleted.

    The digest is not shown: it identifies nothing a person can use, and the prefix
    is what the user sees of their key.
    """

    list_display = (
        "prefix",
        "name",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "monthly_cap",
        "state",
    )
    list_filter = (("user", admin.RelatedOnlyFieldListFilter), ApiKeyStateFilter)
    list_select_related = ("user",)
    search_fields = ("user__login_id", "prefix", "name")
    ordering = ("-created_at",)
    fields = (
        "id",
        "user",
        "name",
        "prefix",
        "state",
        "created_at",
        "last_used_at",
        "expires_at",
        "monthly_cap",
        "allowed_models",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke_keys",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False

    @admin.display(description="state")
    def state(self, key: ApiKey) -> str:
        if key.revoked_at is not None:
            return "revoked"
        return "live" if key.is_live() else "expired"

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = services.api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
