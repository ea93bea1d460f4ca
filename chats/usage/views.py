"""``GET /api/usage/``: a user's own spending, per day, category or key."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from chats.usage.periods import MAX_RANGE_DAYS
from chats.usage.selectors import usage_for_user
from chats.usage.serializers import AccountUsageSerializer, UsageQuerySerializer
from core.openapi import error_responses


@extend_schema_view(
    get=extend_schema(
        parameters=[UsageQuerySerializer],
        description=(
            "The caller's own usage, chat replies and `/v1/` requests together (pending ones left out), "
            "grouped by UTC day, category or API key (chat replies under the key `null`), with totals. "
            f"Groups without usage are left out. The range spans at most {MAX_RANGE_DAYS} days."
        ),
        responses={200: AccountUsageSerializer, **error_responses(400, 401)},
    )
)
class UsageView(APIView):
    """``GET /api/usage/``: one grouped query (:func:`usage_for_user`), whatever the rows."""

    def get(self, request: Request) -> Response:
        params = UsageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        result = usage_for_user(user=request.user, **params.validated_data)
        return Response(AccountUsageSerializer(result).data)
