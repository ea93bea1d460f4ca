"""The project's URLs plus views that fail on purpose, for the error-shape tests."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError

from config.urls import handler400, handler404, handler500
from config.urls import urlpatterns as project_urlpatterns
from core.errors import Conflict

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]

LEAK = "secret internals: /srv/parley/settings.py password=hunter2"


class Boom(Exception):
    pass


RAISES = {
    "boom": lambda: Boom(LEAK),
    "django-validation": lambda: ValidationError({"title": ["Too long."]}),
    "django-validation-plain": lambda: ValidationError("Nope."),
    "django-permission": lambda: PermissionDenied(LEAK),
    "http404": lambda: Http404(LEAK),
    "domain": lambda: Conflict("Already there.", details={"id": 7}),
    "token-error": lambda: TokenError("Token is invalid or expired"),
    "nested": lambda: serializers.ValidationError({"items": [{"name": ["Bad."]}, {}], "n": "Wrong."}),
}


@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def api_raise(request: Request, kind: str):
    raise RAISES[kind]()


def plain_boom(request: HttpRequest):
    raise Boom(LEAK)


@csrf_exempt
def plain_body(request: HttpRequest):
    return JsonResponse({"bytes": len(request.body)})


urlpatterns = [
    path("api/test-raise/<str:kind>", api_raise),
    path("api/test-boom/plain", plain_boom),
    path("auth/test-boom/plain", plain_boom),
    path("api/test-body", plain_body),
    path("elsewhere/test-boom", plain_boom),
    *project_urlpatterns,
]
