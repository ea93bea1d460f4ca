from rest_framework import serializers

from wallets.models import LedgerEntry, Wallet


class WalletSerializer(serializers.ModelSerializer):
    available = serializers.IntegerField(
        read_only=True, help_text="balance - held: what a new reply may spend."
    )
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Wallet
        fields = ["balance", "held", "available", "currency", "updated_at"]
        read_only_fields = fields

    def get_currency(self, wallet: Wallet) -> str:
        return "credits"


class LedgerEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "description", "created_at"]
        read_only_fields = fields
