"""The benchmark URLconf: every production URL, plus ``/bench/bare``.

``/bench/bare`` is the least a Django view can be: a sync function returning
a small ``JsonResponse``, behind the same middleware as the API and called
the same way under ASGI (a sync view, run in the thread that Django keeps for
sync code). What an API endpoint costs beyond it is DRF, authentication, the
database and serialization.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def bare(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("bench/bare", bare, name="bench-bare"),
    path("", include("config.urls")),
]

handler400 = "core.views.bad_request"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
