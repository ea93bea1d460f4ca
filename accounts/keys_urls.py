"""``/api/keys/``: the signed-in user's personal API keys (``api_keys:api-key-list``, ``-detail``).

Apart from :mod:`accounts.urls` because these live under ``/api/`` with trailing slashes,
like the other resources, while ``/auth/`` has none.
"""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts import views

app_name = "api_keys"

router = SimpleRouter()
router.register("keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [path("", include(router.urls))]
