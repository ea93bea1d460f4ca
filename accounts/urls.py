from rest_framework.routers import SimpleRouter

from accounts import views
from core.routing import either_slash

app_name = "accounts"

# Every route is an action of a ViewSet at the root of /auth/, named after it (accounts:auth-register,
# accounts:account-password, ...); each answers with and without its trailing slash (core.routing).
router = SimpleRouter()
router.register("", views.AuthViewSet, basename="auth")
router.register("", views.AccountViewSet, basename="account")

urlpatterns = either_slash(router.urls)
