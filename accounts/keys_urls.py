"""``/api/keys/``: the signed-in user's personal API keys (``api_keys:api-key-list``, ``-detail``).

Apart from :mod:`accounts.urls` because these live under ``/api/``, like the other resources.
"""

from rest_framework.routers import SimpleRouter

from accounts import views
from core.routing import either_slash

app_name = "api_keys"

router = SimpleRouter()
router.register("keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = either_slash(router.urls)
