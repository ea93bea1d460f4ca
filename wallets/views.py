from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request
from rest_framework.response import Response

from core.openapi import ErrorSerializer, error_responses
from wallets import selectors, services
from wallets.codes import code_redeem
from wallets.serializers import (
    LedgerEntrySerializer,
    RedeemInputSerializer,
    RedeemResultSerializer,
    WalletSerializer,
)
from wallets.throttles import RedeemIPThrottle, RedeemUserThrottle


class NoBodyMetadata(SimpleMetadata):
    """OPTIONS lists no fields to send: POST /api/wallet/ takes no body."""

    def determine_actions(self, request, view) -> dict:
        return {}


class WalletViewSet(viewsets.GenericViewSet):
    """The caller's wallet and its ledger; one wallet per user, so no id in the URL.

    ``retrieve`` (GET) and ``create`` (POST) share ``/api/wallet/``;
    ``transactions`` (GET ``/api/wallet/transactions/``) is the ledger,
    paginated; ``redeem`` (POST ``/api/wallet/redeem/``) tops the wallet up
    with a redemption code. ``wallets/urls.py`` maps the methods.
    """

    serializer_class = WalletSerializer
    metadata_class = NoBodyMetadata

    def get_queryset(self):
        return selectors.ledger_entries_for(user=self.request.user)

    @extend_schema(responses={200: WalletSerializer, **error_responses(401)})
    def retrieve(self, request: Request) -> Response:
        """The caller's wallet; reading it creates it (with the bonus) if it is missing."""
        wallet, _ = services.wallet_get_or_create(user=request.user)
        return Response(WalletSerializer(wallet).data)

    @extend_schema(
        request=None, responses={200: WalletSerializer, 201: WalletSerializer, **error_responses(401)}
    )
    def create(self, request: Request) -> Response:
        """The caller's wallet; reading it creates it (with the bonus) if it is missing."""
        wallet, created = services.wallet_get_or_create(user=request.user)
        return Response(
            WalletSerializer(wallet).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(responses={200: LedgerEntrySerializer(many=True), **error_responses(400, 401, 404)})
    @action(detail=False)
    def transactions(self, request: Request) -> Response:
        """The caller's ledger, newest first."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LedgerEntrySerializer(page, many=True).data)

    @extend_schema(
        request=RedeemInputSerializer,
        responses={
            200: RedeemResultSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "invalid_code: the code is unknown, expired, voided or already used (one answer for "
                    "all four); validation_error: no code, or not a string."
                ),
            ),
            **error_responses(401, 413, 429),
        },
    )
    @action(detail=False, methods=["post"], throttle_classes=[RedeemUserThrottle, RedeemIPThrottle])
    def redeem(self, request: Request) -> Response:
        """Redeem a code: its credits are added to the caller's wallet, once."""
        data = RedeemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        entry = code_redeem(user=request.user, code=data.validated_data["code"])
        return Response(RedeemResultSerializer({"balance": entry.balance_after}).data)
