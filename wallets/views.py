from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import error_responses
from wallets import selectors, services
from wallets.serializers import LedgerEntrySerializer, WalletSerializer


class WalletView(APIView):
    """The caller's wallet; reading it creates it (with the bonus) if it is missing."""

    @extend_schema(responses={200: WalletSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        wallet, _ = services.wallet_get_or_create(user=request.user)
        return Response(WalletSerializer(wallet).data)

    @extend_schema(
        request=None, responses={200: WalletSerializer, 201: WalletSerializer, **error_responses(401)}
    )
    def post(self, request: Request) -> Response:
        wallet, created = services.wallet_get_or_create(user=request.user)
        return Response(
            WalletSerializer(wallet).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema_view(
    get=extend_schema(responses={200: LedgerEntrySerializer(many=True), **error_responses(400, 401, 404)})
)
class TransactionListView(generics.ListAPIView):
    """The caller's ledger, newest first."""

    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return selectors.ledger_entries_for(user=self.request.user)
