"""The wallet is a ledger.

* ``Wallet.balance`` is a cache of the sum of the wallet's ``LedgerEntry``
  amounts; every change of it writes one entry in the same transaction.
* Reservations are ``Hold`` rows **and** a running ``Wallet.held`` total.
  The rows give each reservation an identity (so settling or releasing it
  twice does nothing the second time, and a crashed process's hold can be
  found by age); the column lets one conditional ``UPDATE`` on the wallet row
  decide "is there enough available credit?" without summing rows under a
  lock. The database keeps ``0 <= held <= balance``; the audit checks
  ``held`` against the sum of open holds.

Money is whole credits in ``BigIntegerField``s, so no amount or balance
exceeds :data:`CREDITS_MAX`. Nothing here updates or deletes a ledger entry:
:class:`LedgerEntryQuerySet` and :meth:`LedgerEntry.save` refuse it, and the
money rows outlive their user: deleting a user who has a wallet raises
``ProtectedError`` (support staff deactivate accounts instead).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

#: The most credits any money column holds: the range of ``BigIntegerField``.
CREDITS_MAX = models.BigIntegerField.MAX_BIGINT


class Wallet(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet")
    balance = models.BigIntegerField(default=0, help_text="Credits; always the sum of the ledger.")
    held = models.BigIntegerField(default=0, help_text="Credits reserved by open holds.")
    daily_spend_cap = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Credits per UTC day; empty: DEFAULT_DAILY_SPEND_CAP (none if unset).",
    )
    monthly_spend_cap = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="Credits per UTC month; empty: DEFAULT_MONTHLY_SPEND_CAP (none if unset).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallets_wallet_balance_gte_0"),
            models.CheckConstraint(condition=Q(held__gte=0), name="wallets_wallet_held_gte_0"),
            models.CheckConstraint(
                condition=Q(balance__gte=F("held")), name="wallets_wallet_available_gte_0"
            ),
        ]
        permissions = [("adjust_wallet", "Can top up, refund or adjust a wallet through the ledger")]

    def __str__(self) -> str:
        return f"Wallet of {self.user}"

    @property
    def available(self) -> int:
        return self.balance - self.held


class LedgerEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Ledger entries are immutable: append a new entry instead.")

    def delete(self):
        raise TypeError("Ledger entries are immutable: append a new entry instead.")


class LedgerEntry(models.Model):
    class Kind(models.TextChoices):
        BONUS = "bonus", "Sign-up bonus"
        TOPUP = "topup", "Top-up"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    class KeyScope(models.TextChoices):
        """Who chose the idempotency key: the two never collide, whatever their text."""

        SYSTEM = "system", "Made by Parley (the sign-up bonus)"
        CALLER = "caller", "Given by the caller (an operator, staff, a client)"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField(help_text="Signed: credits in are positive, charges negative.")
    balance_after = models.BigIntegerField()
    description = models.CharField(max_length=255, blank=True)
    # NULL, not "", for "no key": the unique (key_scope, idempotency_key) constraint ignores NULLs.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=200, null=True, blank=True, help_text="Unique within its scope: the entry is made once."
    )
    key_scope = models.CharField(
        max_length=8,
        choices=KeyScope.choices,
        blank=True,
        default="",
        help_text="Empty when there is no key.",
    )
    hold = models.OneToOneField(
        "Hold",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="charge",
        help_text="The reservation this charge settled; one charge per hold at most.",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who made this entry, if one did.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="wallets_ledgerentry_amount_not_0"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="wallets_ledgerentry_after_gte_0"),
            models.CheckConstraint(
                condition=Q(kind__in=["bonus", "topup", "refund"], amount__gt=0)
                | Q(kind="charge", amount__lt=0)
                | Q(kind="adjustment"),
                name="wallets_ledgerentry_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(idempotency_key__isnull=True, key_scope="")
                | Q(idempotency_key__isnull=False, key_scope__in=["system", "caller"]),
                name="wallets_ledgerentry_key_has_a_scope",
            ),
            models.UniqueConstraint(
                fields=["key_scope", "idempotency_key"], name="wallets_ledgerentry_key_unique_in_scope"
            ),
        ]
        indexes = [models.Index(fields=["wallet", "-created_at"], name="wallets_ledger_wallet_recent")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} → {self.balance_after}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Ledger entries are immutable: append a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger entries are immutable: append a new entry instead.")


class Hold(models.Model):
    """Credits reserved for a reply before the provider is called."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="holds")
    amount = models.BigIntegerField(help_text="Credits reserved.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    charged = models.BigIntegerField(default=0, help_text="Credits charged when it was settled.")
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="wallets_hold_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(charged__gte=0, charged__lte=F("amount")),
                name="wallets_hold_charged_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True, charged=0)
                | Q(status="settled", closed_at__isnull=False)
                | Q(status="released", closed_at__isnull=False, charged=0),
                name="wallets_hold_status_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="open"), name="wallets_hold_open_by_age"),
        ]

    def __str__(self) -> str:
        return f"Hold {self.amount} ({self.status})"


class CodeBatch(models.Model):
    """Redemption codes made together: each is worth ``credits``, until ``expires_at`` if set.

    The codes themselves are shown once, when the batch is made, and stored
    only as digests (:class:`RedemptionCode`).
    """

    name = models.CharField(max_length=100, help_text="Named on each redemption's ledger entry.")
    credits = models.BigIntegerField(help_text="Credits each code adds.")
    count = models.PositiveIntegerField(help_text="How many codes were made.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the codes never expire.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who made the batch; empty when an operator ran create_codes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "code batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(credits__gt=0, credits__lte=CREDITS_MAX),
                name="wallets_codebatch_credits_in_range",
            ),
            models.CheckConstraint(condition=Q(count__gt=0), name="wallets_codebatch_count_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class RedemptionCode(models.Model):
    """One code of a batch, by the SHA-256 of its normalised text; redeemed or voided at most once."""

    batch = models.ForeignKey(CodeBatch, on_delete=models.PROTECT, related_name="codes")
    digest = models.CharField(max_length=64, unique=True, help_text="Hex SHA-256 of the normalised code.")
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    redeemed_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemption",
        help_text="The top-up this code made.",
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(redeemed_at__isnull=True, redeemed_by__isnull=True, entry__isnull=True)
                | Q(redeemed_at__isnull=False, redeemed_by__isnull=False),
                name="wallets_redemptioncode_redeemed_consistent",
            ),
            models.CheckConstraint(
                condition=Q(voided_at__isnull=False) | Q(voided_by__isnull=True),
                name="wallets_redemptioncode_voided_consistent",
            ),
            models.CheckConstraint(
                condition=Q(redeemed_at__isnull=True) | Q(voided_at__isnull=True),
                name="wallets_redemptioncode_redeemed_or_voided",
            ),
        ]

    def __str__(self) -> str:
        return f"Code {self.digest[:12]}… of {self.batch_id}"
