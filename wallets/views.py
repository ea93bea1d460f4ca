from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallets import selectors, services
from wallets.serializers import LedgerEntrySerializer, WalletSerializer


class WalletView(APIView):
    """The caller's wallet; reading it creates it (with the bonus) if it is missing."""

    @extend_schema(responses={200: WalletSerializer})
    def get(self, request: Request) -> Response:
        wallet, _ = services.wallet_get_or_create(user=request.user)
        return Response(WalletSerializer(wallet).data)

    @extend_schema(request=None, responses={200: WalletSerializer, 201: WalletSerializer})
    def post(self, request: Request) -> Response:
        wallet, created = services.wallet_get_or_create(user=request.user)
        return Response(
            WalletSerializer(wallet).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TransactionListView(generics.ListAPIView):
    """The caller's ledger, newest first."""

    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return selectors.ledger_entries_for(user=self.request.user)
