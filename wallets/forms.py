import uuid

from django import forms

from wallets.models import LedgerEntry


class WalletAdjustForm(forms.Form):
    """What support staff fill in to move credits; the service does the rest."""

    KINDS = [
        (LedgerEntry.Kind.TOPUP, "Top up (adds credits)"),
        (LedgerEntry.Kind.REFUND, "Refund (adds credits)"),
        (LedgerEntry.Kind.ADJUSTMENT, "Adjustment (adds, or removes if negative)"),
    ]

    kind = forms.ChoiceField(choices=KINDS, initial=LedgerEntry.Kind.TOPUP)
    amount = forms.IntegerField(help_text="Whole credits. Only an adjustment may be negative.")
    reason = forms.CharField(max_length=255, help_text="Recorded on the ledger entry, with your name.")
    # A fresh key per rendered form: submitting the same form twice applies once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", f"admin:{uuid.uuid4()}")
        super().__init__(*args, **kwargs)
