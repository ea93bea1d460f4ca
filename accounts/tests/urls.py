"""The project's URLs plus one view behind ApiKeyAuthentication alone, for its tests."""

from django.urls import path
from rest_framework.decorators import api_view, authentication_classes
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import ApiKeyAuthentication
from config.urls import handler400, handler404, handler500
from config.urls import urlpatterns as project_urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


@api_view(["GET"])
@authentication_classes([ApiKeyAuthentication])
def whoami(request: Request) -> Response:
    return Response({"user": request.user.login_id, "key": str(request.auth.pk)})


urlpatterns = [path("api/test-key-whoami", whoami), *project_urlpatterns]
