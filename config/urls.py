from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin import admin_login
from core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("admin/login/", admin_login, name="admin-login"),  # admin.site.login, throttled
    path("admin/", admin.site.urls),
    path("auth/", include("accounts.urls")),
    path("api/", include("accounts.keys_urls")),
    path("api/", include("wallets.urls")),
    path("api/", include("chats.urls")),
    path("v1/", include("chats.v1.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

handler400 = "core.views.bad_request"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
