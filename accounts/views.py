from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import google, services
from accounts.serializers import (
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
from accounts.throttles import AuthIPThrottle, AuthLoginIdThrottle
from core.openapi import error_responses


def _auth_result(user) -> dict:
    return AuthResultSerializer({"user": user, **services.tokens_issue(user=user)}).data


class PublicAPIView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(PublicAPIView):
    throttle_classes = [AuthIPThrottle, AuthLoginIdThrottle]

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: AuthResultSerializer, **error_responses(400, 409, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        data = RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response(_auth_result(user), status=status.HTTP_201_CREATED)


class LoginView(PublicAPIView):
    throttle_classes = [AuthIPThrottle, AuthLoginIdThrottle]

    @extend_schema(
        request=LoginInputSerializer,
        responses={200: AuthResultSerializer, **error_responses(400, 401, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        data = LoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_authenticate(**data.validated_data)
        return Response(_auth_result(user))


class TokenRefreshView(PublicAPIView):
    @extend_schema(
        request=RefreshInputSerializer, responses={200: TokenPairSerializer, **error_responses(400, 401, 413)}
    )
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(TokenPairSerializer(services.token_refresh(**data.validated_data)).data)


class LogoutView(PublicAPIView):
    @extend_schema(request=RefreshInputSerializer, responses={204: None, **error_responses(400, 401, 413)})
    def post(self, request: Request) -> Response:
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_logout(**data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses={200: UserSerializer, **error_responses(401)})
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        request=ProfileInputSerializer, responses={200: UserSerializer, **error_responses(400, 401, 413)}
    )
    def patch(self, request: Request) -> Response:
        data = ProfileInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update_profile(user=request.user, **data.validated_data)
        return Response(UserSerializer(user).data)


class PasswordView(APIView):
    @extend_schema(request=PasswordInputSerializer, responses={204: None, **error_responses(400, 401, 413)})
    def post(self, request: Request) -> Response:
        data = PasswordInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_change_password(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GoogleSignInView(PublicAPIView):
    throttle_classes = [AuthIPThrottle]

    @extend_schema(
        request=GoogleInputSerializer,
        responses={
            200: AuthResultSerializer,
            201: AuthResultSerializer,
            **error_responses(400, 401, 413, 429, 502, 503),
        },
    )
    def post(self, request: Request) -> Response:
        data = GoogleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, created = google.google_sign_in(
            request=request._request, id_token=data.validated_data["id_token"]
        )
        return Response(_auth_result(user), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
