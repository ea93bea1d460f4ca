"""The accounts API: signing in and out, the signed-in user's account, and their API keys.

Each action validates its input with an input serializer, calls one service and
renders the result; the ``/auth/`` URLs (no trailing slash) come from the router in
:mod:`accounts.urls`, ``/api/keys/`` from :mod:`accounts.keys_urls`. Responses that
carry tokens or secrets are never to be stored by a cache (``Cache-Control: no-store``).
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import google, selectors, services
from accounts.authentication import JWTAuthentication
from accounts.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeySerializer,
    AuthResultSerializer,
    GoogleInputSerializer,
    LoginInputSerializer,
    PasswordInputSerializer,
    ProfileInputSerializer,
    RefreshInputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from accounts.throttles import (
    AuthIPThrottle,
    AuthLoginIdThrottle,
    PasswordChangeIPThrottle,
    PasswordChangeUserThrottle,
)
from core.openapi import error_responses
from core.pagination import CursorPagination

NO_STORE = {"Cache-Control": "no-store"}


def _tokens_response(data: dict, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(data, status=status_code, headers=NO_STORE)


def _auth_result(user, status_code: int = status.HTTP_200_OK) -> Response:
    data = AuthResultSerializer({"user": user, **services.tokens_issue(user=user)}).data
    return _tokens_response(data, status_code)


# Sign-up, sign-in (password or Google), token refresh and sign-out: no token needed.
# (Comments, not docstrings: drf-spectacular would print a ViewSet's docstring as the
# description of each of its operations.)
class AuthViewSet(viewsets.GenericViewSet):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # What OPTIONS lists under POST (core.metadata.InputMetadata).
    input_serializer_classes = {
        "register": RegisterInputSerializer,
        "login": LoginInputSerializer,
        "token_refresh": RefreshInputSerializer,
        "logout": RefreshInputSerializer,
        "google": GoogleInputSerializer,
    }

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: AuthResultSerializer, **error_responses(400, 409, 413, 429)},
    )
    @action(detail=False, methods=["post"], throttle_classes=[AuthIPThrottle, AuthLoginIdThrottle])
    def register(self, request: Request) -> Response:
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return _auth_result(user, status.HTTP_201_CREATED)

    @extend_schema(
        request=LoginInputSerializer,
        responses={200: AuthResultSerializer, **error_responses(400, 401, 413, 429)},
    )
    @action(detail=False, methods=["post"], throttle_classes=[AuthIPThrottle, AuthLoginIdThrottle])
    def login(self, request: Request) -> Response:
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_authenticate(**data.validated_data)
        return _auth_result(user)

    @extend_schema(
        request=RefreshInputSerializer, responses={200: TokenPairSerializer, **error_responses(400, 401, 413)}
    )
    @action(detail=False, methods=["post"], url_path="token/refresh", url_name="token-refresh")
    def token_refresh(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _tokens_response(TokenPairSerializer(services.token_refresh(**data.validated_data)).data)

    @extend_schema(request=RefreshInputSerializer, responses={204: None, **error_responses(400, 401, 413)})
    @action(detail=False, methods=["post"])
    def logout(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=GoogleInputSerializer,
        responses={
            200: AuthResultSerializer,
            201: AuthResultSerializer,
            **error_responses(400, 401, 413, 429, 502, 503),
        },
    )
    @action(detail=False, methods=["post"], throttle_classes=[AuthIPThrottle])
    def google(self, request: Request) -> Response:
        data = GoogleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, created = google.google_sign_in(
            request=request._request, id_token=data.validated_data["id_token"]
        )
        return _auth_result(user, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# The signed-in user's own account: profile and password.
class AccountViewSet(viewsets.GenericViewSet):
    input_serializer_classes = {"me_update": ProfileInputSerializer, "password": PasswordInputSerializer}

    @extend_schema(responses={200: UserSerializer, **error_responses(401)})
    @action(detail=False, methods=["get"])
    def me(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        request=ProfileInputSerializer, responses={200: UserSerializer, **error_responses(400, 401, 413)}
    )
    @me.mapping.patch
    def me_update(self, request: Request) -> Response:
        data = ProfileInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **data.validated_data)
        return Response(UserSerializer(user).data)

    @extend_schema(
        request=PasswordInputSerializer, responses={204: None, **error_responses(400, 401, 413, 429)}
    )
    @action(
        detail=False,
        methods=["post"],
        throttle_classes=[PasswordChangeIPThrottle, PasswordChangeUserThrottle],
    )
    def password(self, request: Request) -> Response:
        data = PasswordInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_change_password(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


# The caller's personal API keys (/api/keys/): list, create (the secret shown once), revoke.
# JWT only, whatever the project's defaults: a key cannot make or revoke keys.
@extend_schema_view(
    list=extend_schema(responses={200: ApiKeySerializer(many=True), **error_responses(400, 401, 404)}),
    destroy=extend_schema(
        description="Revokes the key: it is refused at once; the row stays, listed with its revoked_at.",
        responses={204: None, **error_responses(401, 404)},
    ),
)
class ApiKeyViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    authentication_classes = [JWTAuthentication]
    serializer_class = ApiKeySerializer
    input_serializer_classes = {"create": ApiKeyCreateInputSerializer}
    pagination_class = CursorPagination  # newest first

    def get_queryset(self):
        return selectors.api_keys_for_user(user=self.request.user)

    @extend_schema(
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedSerializer, **error_responses(400, 401, 409, 413)},
        description="The secret is in this answer only; 409 `api_key_limit` at API_KEYS_PER_USER live keys.",
    )
    def create(self, request: Request) -> Response:
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.api_key_create(user=request.user, **data.validated_data)
        key.secret = secret
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED, headers=NO_STORE)

    def destroy(self, request: Request, pk=None) -> Response:
        services.api_key_revoke(user=request.user, key_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
