from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts import views

app_name = "accounts"

# No trailing slash on /auth/ URLs; every route is an action of a ViewSet at the root of /auth/,
# named after it (accounts:auth-register, accounts:account-password, ...).
router = SimpleRouter(trailing_slash=False)
router.register("", views.AuthViewSet, basename="auth")
router.register("", views.AccountViewSet, basename="account")

urlpatterns = [path("", include(router.urls))]
