from rest_framework import serializers

from core.fields import StrictCharField
from wallets.models import LedgerEntry, Wallet


# A plain ``Serializer``, not a ``ModelSerializer``: that one rebuilds its fields
# from the model on every instantiation, and the wallet's reads and writes
# (``/api/wallet/``) build one on every request.
class WalletSerializer(serializers.Serializer):
    balance = serializers.IntegerField(read_only=True, help_text="Credits; always the sum of the ledger.")
    held = serializers.IntegerField(read_only=True, help_text="Credits reserved by open holds.")
    available = serializers.IntegerField(
        read_only=True, help_text="balance - held: what a new reply may spend."
    )
    currency = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(read_only=True)

    def get_currency(self, wallet: Wallet) -> str:
        return "credits"


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "description", "created_at"]
        read_only_fields = fields


class RedeemInputSerializer(serializers.Serializer):
    code = StrictCharField(
        max_length=64,
        help_text="A redemption code, e.g. ABCD-EFGH-JKLM-NPQR; spaces, dashes and case are ignored.",
    )


class RedeemResultSerializer(serializers.Serializer):
    balance = serializers.IntegerField(read_only=True, help_text="The wallet's balance after the top-up.")
