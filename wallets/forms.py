import uuid

from django import forms

from core.errors import DomainError
from wallets.errors import InsufficientFunds
from wallets.models import CREDITS_MAX, LedgerEntry


def new_key() -> str:
    return f"admin:{uuid.uuid4()}"


class WalletAdjustForm(forms.Form):
    """What support staff fill in to move credits; the service does the rest.

    Every refusal is shown on the form: a field's on that field, anything else
    (not enough credits, a problem with the hidden key) above it. Nothing the
    staff member cannot see is left to explain why nothing was recorded.
    """

    KINDS = [
        (LedgerEntry.Kind.TOPUP, "Top up (adds credits)"),
        (LedgerEntry.Kind.REFUND, "Refund (adds credits)"),
        (LedgerEntry.Kind.ADJUSTMENT, "Adjustment (adds, or removes if negative)"),
    ]
    KEY = "idempotency_key"
    KEY_PROBLEM = (
        "This form was already submitted with other values, or its hidden key is not valid, so nothing "
        "was recorded. It now carries a fresh key: check the ledger below the wallet, then submit again "
        "only if the change is still missing."
    )

    kind = forms.ChoiceField(choices=KINDS, initial=LedgerEntry.Kind.TOPUP)
    amount = forms.IntegerField(
        min_value=-CREDITS_MAX,
        max_value=CREDITS_MAX,
        error_messages={
            "max_value": "At most %(limit_value)s credits.",
            "min_value": "At least %(limit_value)s credits.",
        },
        help_text="Whole credits. Only an adjustment may be negative.",
    )
    reason = forms.CharField(max_length=255, help_text="Recorded on the ledger entry, with your name.")
    # A fresh key per rendered form: submitting the same form twice applies once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault(self.KEY, new_key())
        super().__init__(*args, **kwargs)

    def clean(self):
        # The hidden key's own errors (missing, too long) would never be seen: say so above the form.
        if self.KEY in self._errors:
            del self._errors[self.KEY]
            self._key_problem()
        return super().clean()

    def add_service_error(self, exc: DomainError) -> None:
        """Show a service's refusal: on the visible field it names, otherwise above the form."""
        shown = False
        for field, errors in exc.details.items():
            if field == self.KEY:
                self._key_problem()
                shown = True
            elif field in self.fields and isinstance(errors, list):
                for error in errors:
                    self.add_error(field, error)
                shown = True
        if not shown:
            self.add_error(None, _sentence(exc))

    def _key_problem(self) -> None:
        """Explain, and give the form a fresh key, so that submitting it again can work."""
        self.add_error(None, self.KEY_PROBLEM)
        self.data = self.data.copy()
        self.data[self.add_prefix(self.KEY)] = new_key()


def _sentence(exc: DomainError) -> str:
    if isinstance(exc, InsufficientFunds) and "available" in exc.details:
        return (
            f"{exc.message} It has {exc.details['available']} available (balance less held), "
            f"and this takes {exc.details['required']}."
        )
    return exc.message


class CodeBatchForm(forms.Form):
    """What staff fill in to make a batch of redemption codes; ``code_batch_create`` checks the rest."""

    name = forms.CharField(max_length=100, help_text="Named on the ledger entry of every redemption.")
    count = forms.IntegerField(min_value=1, max_value=10_000, help_text="How many codes to make.")
    credits = forms.IntegerField(
        min_value=1,
        max_value=CREDITS_MAX,
        error_messages={"max_value": "At most %(limit_value)s credits."},
        help_text="Credits each code adds to the wallet that redeems it.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        help_text="Optional, in the server's time zone (UTC), e.g. 2026-12-31 23:59. Empty: never.",
    )

    def add_service_error(self, exc: DomainError) -> None:
        for field, errors in exc.details.items():
            for error in errors if isinstance(errors, list) else [errors]:
                self.add_error(field if field in self.fields else None, error)
        if not exc.details:
            self.add_error(None, exc.message)
