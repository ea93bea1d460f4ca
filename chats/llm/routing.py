"""Routing one request over a model's deployments, with failover before the first token.

A catalogue model is served by one or more deployments (a provider and the
model's name there), already put in the order to try by whoever planned the
request: by priority, then by weight within a priority
(:func:`order_by_priority_and_weight`). :func:`open_stream` tries them in
that order: a connection error, a timeout, a 5xx, a 429 or the upstream
refusing Parley's own key (401/403), before the first chunk, moves the
request to the next one; a refusal of the request itself (400, 404, 413,
422) comes back at once, since no deployment would serve it. After the first chunk
there is no failover: the reply ends as the money rules say.

Routes are plain data, built from the catalogue before the stream starts,
so nothing here touches the database.
"""

import logging
import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from core import metrics

from . import cooldown
from .base import Chunk, LLMProvider, LLMStream, LLMUnavailable, UpstreamRefused, WireMessage
from .echo import EchoProvider
from .factory import PROVIDERS, get_provider
from .openai_provider import NO_KEY, ClientConfig, OpenAIProvider

logger = logging.getLogger(__name__)

#: Upstream statuses that say the request itself is wrong (or names a model no deployment has):
#: every deployment would say the same, so the client hears it at once.
REQUEST_REFUSED = frozenset({400, 404, 413, 422})


@dataclass(frozen=True)
class ProviderSpec:
    """A provider as a request needs it: what kind, where, with which key (named, never stored)."""

    kind: str
    base_url: str | None = None
    api_key_env: str = ""
    timeout: float = 60.0
    retries: int = 0


@dataclass(frozen=True)
class Route:
    """One deployment a request may go to; ``provider`` None is the settings' default provider."""

    deployment: str  # its name in logs, metrics and records: "provider/upstream-model"
    upstream_model: str
    provider: ProviderSpec | None = None
    priority: int = 1
    weight: int = 1
    drop_params: frozenset[str] = field(default_factory=frozenset)


def order_by_priority_and_weight(routes: Iterable[Route]) -> list[Route]:
    """Lower priority first; within one priority a weighted random order, so that a weight of 3
    against 1 takes three requests in four first."""
    ordered: list[Route] = []
    by_priority: dict[int, list[Route]] = {}
    for route in routes:
        by_priority.setdefault(route.priority, []).append(route)
    for priority in sorted(by_priority):
        pool = list(by_priority[priority])
        while pool:
            pick = random.choices(pool, weights=[max(route.weight, 0) or 1e-9 for route in pool])[0]
            pool.remove(pick)
            ordered.append(pick)
    return ordered


def provider_for(route: Route) -> LLMProvider:
    """The provider that serves ``route`` (cheap: clients are cached by configuration)."""
    spec = route.provider
    if spec is None:
        return get_provider()
    if spec.kind == EchoProvider.name:
        return PROVIDERS[EchoProvider.name]()
    return OpenAIProvider(
        ClientConfig(
            # A key whose variable is unset is sent as none: the upstream refusing it is that
            # deployment failing (401), not this request crashing.
            api_key=os.environ.get(spec.api_key_env, "") or NO_KEY,
            base_url=spec.base_url or None,
            timeout=float(spec.timeout),
            max_retries=int(spec.retries),
        )
    )


class _Primed(LLMStream):
    """A stream whose first chunk was read already (to know it started): that chunk, then the rest."""

    def __init__(self, stream: LLMStream, first: Chunk | None) -> None:
        self._stream, self._first = stream, first

    async def __anext__(self) -> Chunk:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anext(self._stream)

    @property
    def usage(self):
        return self._stream.usage

    @property
    def finish_reason(self):
        return self._stream.finish_reason

    async def aclose(self) -> None:
        await self._stream.aclose()


@dataclass
class Attempt:
    """What became of one deployment tried: for the logs, the metrics and the answer."""

    route: Route
    error: LLMUnavailable | None = None
    skipped: bool = False


async def open_stream(
    routes: Sequence[Route],
    *,
    messages: list[WireMessage],
    max_tokens: int,
    options: Mapping[str, Any] | None = None,
    attempts: list[Attempt] | None = None,
) -> tuple[LLMStream, Route]:
    """The first deployment's stream that yields a first chunk, and that deployment.

    ``attempts`` (if given) receives each deployment tried or skipped, in order. Raises the
    refusal of a request no deployment would serve at once; when every deployment failed,
    :class:`UpstreamRefused` 429 (with the shortest ``Retry-After``) if each was rate-limited,
    else the last failure.
    """
    attempts = [] if attempts is None else attempts
    several = len(routes) > 1
    state = await cooldown.deployments_state([r.deployment for r in routes]) if several else None
    for route in routes:
        if state is not None and route.deployment in state.cooling:
            attempts.append(Attempt(route, skipped=True))
            continue
        sent = {k: v for k, v in (options or {}).items() if k not in route.drop_params}
        stream = None
        started = time.monotonic()
        try:
            stream = await provider_for(route).stream(
                messages=messages, model=route.upstream_model, max_tokens=max_tokens, options=sent
            )
            first = await anext(stream, None)
        except LLMUnavailable as exc:
            if stream is not None:
                await stream.aclose()
            if exc.upstream_status in REQUEST_REFUSED:
                raise  # the request itself was refused: every deployment would refuse it
            attempts.append(Attempt(route, error=exc))
            metrics.UPSTREAM_LATENCY.labels(route.deployment).observe(time.monotonic() - started)
            if several:
                metrics.FAILOVERS.labels(route.deployment).inc()
                if await cooldown.record_failure(route.deployment, retry_after=exc.retry_after):
                    metrics.COOLDOWNS.labels(route.deployment).inc()
                    logger.warning("Deployment %s cools down after failing repeatedly", route.deployment)
            logger.warning("Deployment %s failed (%s)", route.deployment, exc.message)
            continue
        metrics.UPSTREAM_LATENCY.labels(route.deployment).observe(time.monotonic() - started)
        if state is not None and route.deployment in state.failing:
            await cooldown.record_success(route.deployment)  # its failures are no longer in a row
        attempts.append(Attempt(route))
        return _Primed(stream, first), route
    raise _every_deployment_failed(attempts)


def _every_deployment_failed(attempts: list[Attempt]) -> LLMUnavailable:
    errors = [attempt.error for attempt in attempts if attempt.error is not None]
    if len(errors) == 1:
        return errors[0]  # as the one deployment tried said it
    if errors and all(error.upstream_status == 429 for error in errors):
        waits = [error.retry_after for error in errors if error.retry_after is not None]
        retry_after = min(waits) if waits else None
        return UpstreamRefused(
            upstream_status=429,
            error={
                "message": "Every deployment of this model is rate-limited; try again later.",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            },
            retry_after=retry_after,
        )
    if errors:
        return errors[-1]
    return LLMUnavailable(
        "Every deployment of this model is cooling down after failures; try again shortly.",
        details={"reason": "cooldown"},
        status_code=503,
        retry_after=settings.COOLDOWN_SECONDS,
    )
