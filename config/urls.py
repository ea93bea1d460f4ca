from django.contrib import admin
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin import admin_login
from core import views as core_views
from core.metrics import metrics_view
from core.routing import either_slash

urlpatterns = [
    path("", core_views.index, name="index"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; off unless METRICS_TOKEN is set
    path("admin/login/", admin_login, name="admin-login"),  # admin.site.login, throttled
    path("admin/", admin.site.urls),
    path("auth/", include("accounts.urls")),
    path("api/", include("accounts.keys_urls")),
    path("api/", include("wallets.urls")),
    path("api/", include("chats.urls")),
    path("v1/", include("chats.v1.urls")),
    *either_slash(
        [
            path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
            path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
        ]
    ),
]

# The admin's "View site" link: this site is an API, and its docs are its pages.
admin.site.site_url = reverse_lazy("docs")

handler400 = "core.views.bad_request"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
