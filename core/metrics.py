"""What Parley counts for Prometheus, and ``GET /metrics`` that shows it.

Every series the operator's dashboards read is defined here, in one place,
with its labels (each bounded: a route pattern, a catalogue model, a
deployment; never a user or a URL with ids in it).

With several worker processes (``uvicorn --workers N``), each process
counts on its own: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
(the same for every worker, emptied before they start) and the
``prometheus_client`` library keeps the counts in files there, so that
``/metrics``, whichever worker answers it, adds them all up. Without it the
counts are the answering process's own: right for one worker.

``/metrics`` is off (404) unless ``METRICS_TOKEN`` is set; then it takes
``Authorization: Bearer <METRICS_TOKEN>``.
"""

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core import openapi
from core.exceptions import error_body
from core.responses import JsonResponse

REQUESTS = Counter(
    "parley_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
REPLIES = Counter(
    "parley_replies",
    "Replies (chat replies and /v1/ requests) by catalogue model, deployment and outcome.",
    ["model", "deployment", "outcome"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "parley_time_to_first_token_seconds",
    "From the upstream request to the first chunk, by catalogue model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
UPSTREAM_LATENCY = Histogram(
    "parley_upstream_latency_seconds",
    "Each upstream request, from sent to its first chunk (or its failure), by deployment.",
    ["deployment"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)
TOKENS = Counter(
    "parley_tokens", "Tokens charged, by catalogue model and kind (prompt, completion).", ["model", "kind"]
)
CREDITS = Counter("parley_credits", "Credits charged, by catalogue model.", ["model"])
REPLIES_RUNNING = Gauge("parley_replies_running", "Replies streaming now.", multiprocess_mode="livesum")
FAILOVERS = Counter(
    "parley_failovers",
    "Requests moved on from a deployment that failed before the first token.",
    ["deployment"],
)
COOLDOWNS = Counter("parley_cooldowns", "Times a deployment started a cooldown.", ["deployment"])


def _registry() -> CollectorRegistry:
    """Every process's counts when ``PROMETHEUS_MULTIPROC_DIR`` is set, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import REGISTRY

        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: Prometheus's text format, for a scraper holding ``METRICS_TOKEN``."""
    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse(error_body("not_found", "Metrics are off: set METRICS_TOKEN."), status=404)
    sent = request.headers.get("Authorization", "")
    scheme, _, credential = sent.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token.encode()):
        body = error_body("not_authenticated", "A bearer token (METRICS_TOKEN) is needed.")
        response = JsonResponse(body, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


metrics_view.cls, metrics_view.initkwargs = openapi.MetricsURLView, {}
