"""Support staff see wallets and move credits only through the services.

Nothing here can edit a balance: the wallet page is read-only, ledger
entries and holds have no add, change or delete, and the "top up / adjust"
page calls ``wallet_top_up``/``wallet_refund``/``wallet_adjust`` with the
staff member as ``actor``.

Redemption codes: the batch's add page calls ``code_batch_create`` and
answers with the codes themselves, once (they are stored as digests only);
the "void" action calls ``code_batch_void``; codes are read-only.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.errors import DomainError
from wallets import selectors, services
from wallets.codes import code_batch_create, code_batch_void, code_digest
from wallets.forms import CodeBatchForm, WalletAdjustForm
from wallets.models import CodeBatch, Hold, LedgerEntry, RedemptionCode, Wallet

INLINE_LEDGER_ROWS = 50
ADJUST_PERMISSION = "wallets.adjust_wallet"


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LedgerEntryInline(ReadOnlyMixin, admin.TabularInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "amount", "balance_after", "description", "actor"]
    readonly_fields = fields
    ordering = ["-created_at", "-pk"]
    verbose_name_plural = f"ledger (latest {INLINE_LEDGER_ROWS} entries)"
    show_change_link = False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("actor")
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id is None:
            return queryset
        latest = LedgerEntry.objects.filter(wallet_id=unquote(object_id)).order_by("-created_at", "-pk")
        return queryset.filter(pk__in=latest.values("pk")[:INLINE_LEDGER_ROWS])


class OpenHoldInline(ReadOnlyMixin, admin.TabularInline):
    model = Hold
    fields = ["id", "amount", "description", "created_at"]
    readonly_fields = fields
    verbose_name_plural = "open holds (reserved for replies in progress)"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=Hold.Status.OPEN)


@admin.register(Wallet)
class WalletAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["user", "user_email", "balance", "held", "available", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__login_id", "user__email"]
    fields = [
        "user",
        "balance",
        "held",
        "available",
        "daily_spend_cap",
        "monthly_spend_cap",
        "created_at",
        "updated_at",
        "ledger_actions",
    ]
    readonly_fields = [field for field in fields if not field.endswith("_spend_cap")]
    inlines = [OpenHoldInline, LedgerEntryInline]
    ordering = ["-updated_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        """Staff change the spending caps here; money moves only through the ledger actions."""
        return request.user.has_perm("wallets.change_wallet")

    def save_model(self, request, obj: Wallet, form, change) -> None:
        services.wallet_set_spend_caps(
            wallet=obj,
            daily=form.cleaned_data.get("daily_spend_cap"),
            monthly=form.cleaned_data.get("monthly_spend_cap"),
        )

    @admin.display(description="e-mail", ordering="user__email")
    def user_email(self, wallet: Wallet) -> str:
        return wallet.user.email

    @admin.display(description="available")
    def available(self, wallet: Wallet) -> int:
        return wallet.available

    @admin.display(description="ledger")
    def ledger_actions(self, wallet: Wallet) -> str:
        ledger = reverse("admin:wallets_ledgerentry_changelist") + f"?wallet__id__exact={wallet.pk}"
        adjust = reverse("admin:wallets_wallet_adjust", args=[wallet.pk])
        return format_html('<a href="{}">Top up / adjust</a> · <a href="{}">Full ledger</a>', adjust, ledger)

    def get_urls(self):
        adjust = path(
            "<path:object_id>/adjust/",
            self.admin_site.admin_view(self.adjust_view),
            name="wallets_wallet_adjust",
        )
        return [adjust, *super().get_urls()]

    def adjust_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(ADJUST_PERMISSION):
            raise PermissionDenied
        wallet = self.get_object(request, unquote(object_id))
        if wallet is None:
            raise Http404("No such wallet.")
        form = WalletAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = self._apply(request, wallet, form.cleaned_data)
            except DomainError as exc:
                form.add_service_error(exc)
            else:
                self.message_user(
                    request,
                    f"{entry.get_kind_display()} of {entry.amount:+d} credits recorded; "
                    f"the balance is now {entry.balance_after}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:wallets_wallet_change", args=[wallet.pk]))
        if form.errors:
            self.message_user(request, "Nothing was recorded: see the form below.", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Top up / adjust: {wallet.user}",
            "opts": self.opts,
            "original": wallet,
            "form": form,
        }
        return TemplateResponse(request, "admin/wallets/wallet/adjust.html", context)

    def _apply(self, request: HttpRequest, wallet: Wallet, data: dict) -> LedgerEntry:
        common = {
            "user": wallet.user,
            "amount": data["amount"],
            "reason": data["reason"],
            "idempotency_key": data["idempotency_key"],
            "actor": request.user,
        }
        if data["kind"] == LedgerEntry.Kind.ADJUSTMENT:
            return services.wallet_adjust(**common)
        if data["kind"] == LedgerEntry.Kind.REFUND:
            return services.wallet_refund(**common)
        return services.wallet_top_up(**common)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "wallet", "kind", "amount", "balance_after", "description", "actor"]
    list_filter = ["kind"]
    list_select_related = ["wallet__user", "actor"]
    search_fields = ["wallet__user__login_id", "wallet__user__email", "idempotency_key", "description"]
    ordering = ["-created_at", "-pk"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "wallet", "amount", "status", "charged", "closed_at"]
    list_filter = ["status"]
    list_select_related = ["wallet__user"]
    search_fields = ["wallet__user__login_id", "=id"]
    ordering = ["-created_at"]


@admin.register(CodeBatch)
class CodeBatchAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "credits",
        "redeemed_of_count",
        "voided",
        "expires_at",
        "created_by",
        "created_at",
    ]
    search_fields = ["name"]
    fields = ["name", "credits", "count", "redeemed", "voided", "expires_at", "created_by", "created_at"]
    readonly_fields = fields
    ordering = ["-created_at", "-pk"]
    actions = ["void_unredeemed"]

    def get_queryset(self, request):
        return selectors.code_batches_with_counts()

    # Batches are made by the add page below, never edited, never deleted (their codes protect them).
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_void_permission(self, request) -> bool:
        return request.user.has_perm("wallets.change_codebatch")

    @admin.display(description="redeemed", ordering="redeemed")
    def redeemed_of_count(self, batch: CodeBatch) -> str:
        return f"{batch.redeemed} / {batch.count}"

    @admin.display(description="redeemed", ordering="redeemed")
    def redeemed(self, batch: CodeBatch) -> int:
        return batch.redeemed

    @admin.display(description="voided", ordering="voided")
    def voided(self, batch: CodeBatch) -> int:
        return batch.voided

    @admin.action(description="Void the unredeemed codes of the selected batches", permissions=["void"])
    def void_unredeemed(self, request: HttpRequest, queryset) -> None:
        voided = sum(code_batch_void(batch=batch, actor=request.user) for batch in queryset)
        self.message_user(request, f"{voided} unredeemed code(s) voided.", messages.SUCCESS)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Make a batch; the answer to the POST is the only page that ever shows its codes."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CodeBatchForm(request.POST or None)
        batch, codes = None, []
        if request.method == "POST" and form.is_valid():
            try:
                batch, codes = code_batch_create(**form.cleaned_data, actor=request.user)
            except DomainError as exc:
                form.add_service_error(exc)
            else:
                self.log_addition(request, batch, [{"added": {}}])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Codes of {batch}" if batch else "Make redemption codes",
            "opts": self.opts,
            "form": form,
            "batch": batch,
            "codes": codes,
        }
        response = TemplateResponse(request, "admin/wallets/codebatch/add.html", context)
        response["Cache-Control"] = "no-store"  # the codes must not outlive this page in any cache
        return response


@admin.register(RedemptionCode)
class RedemptionCodeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["digest_start", "batch", "redeemed_by", "redeemed_at", "voided_at"]
    list_filter = [("redeemed_at", admin.EmptyFieldListFilter), ("voided_at", admin.EmptyFieldListFilter)]
    list_select_related = ["batch", "redeemed_by"]
    search_fields = ["batch__name", "redeemed_by__login_id", "=digest"]
    ordering = ["-pk"]

    def get_search_results(self, request, queryset, search_term):
        """A code as a customer typed it finds its row, by digest: support can see why it was refused."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            found = found | queryset.filter(digest=code_digest(search_term))
        return found, may_have_duplicates

    @admin.display(description="digest")
    def digest_start(self, code: RedemptionCode) -> str:
        return f"{code.digest[:12]}…"
