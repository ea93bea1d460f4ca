"""Which deployments are cooling down: skipped for a while after failing several times in a row.

A deployment that failed ``COOLDOWN_FAILURES`` times in a row (a success in
between starts the count again) is skipped for ``COOLDOWN_SECONDS``, or for
as long as its upstream's last ``Retry-After`` asked. Shared by every worker
through Redis when ``REDIS_URL`` is set (a failure count and a cooldown key
per deployment), in the process otherwise.

The request reads both keys of all its model's deployments in one round
trip (:func:`deployments_state`); a success writes only when its deployment
had failures counted, so that the usual request costs one read and no write.
Only models with more than one deployment use any of it: with one there is
nowhere else to send a request, so it is always tried, and the
single-upstream path costs no Redis round trip at all.
"""

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from core.redis import async_client, deployment_cooldown_key, deployment_failures_key

# Without Redis: failures in a row and cooldown ends, by deployment, in this process.
_failures: dict[str, int] = {}
_cool_until: dict[str, float] = {}
_lock = threading.Lock()

#: A failure count nobody touched for this long is forgotten (with Redis): no key lives for ever.
FAILURES_KEPT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DeploymentsState:
    """Of a request's deployments: those cooling down, and those with failures counted."""

    cooling: frozenset[str] = field(default_factory=frozenset)
    failing: frozenset[str] = field(default_factory=frozenset)


async def deployments_state(deployments: list[str]) -> DeploymentsState:
    """Which of ``deployments`` cool down now and which have failures counted (one round trip)."""
    redis = async_client()
    if redis is None:
        now = time.monotonic()
        with _lock:
            return DeploymentsState(
                cooling=frozenset(name for name in deployments if _cool_until.get(name, 0) > now),
                failing=frozenset(name for name in deployments if _failures.get(name)),
            )
    keys = [deployment_cooldown_key(name) for name in deployments]
    keys += [deployment_failures_key(name) for name in deployments]
    values = await redis.mget(keys)
    cooling, failures = values[: len(deployments)], values[len(deployments) :]
    return DeploymentsState(
        cooling=frozenset(name for name, flag in zip(deployments, cooling, strict=True) if flag is not None),
        failing=frozenset(name for name, count in zip(deployments, failures, strict=True) if count),
    )


async def record_failure(deployment: str, *, retry_after: float | None) -> bool:
    """Count one more failure in a row; True when it starts the deployment's cooldown."""
    seconds = retry_after if retry_after else settings.COOLDOWN_SECONDS
    redis = async_client()
    if redis is None:
        with _lock:
            _failures[deployment] = failures = _failures.get(deployment, 0) + 1
            if failures < settings.COOLDOWN_FAILURES:
                return False
            _failures.pop(deployment, None)
            _cool_until[deployment] = time.monotonic() + seconds
            return True
    key = deployment_failures_key(deployment)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, FAILURES_KEPT_SECONDS)
        failures, _ = await pipe.execute()
    if failures < settings.COOLDOWN_FAILURES:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(deployment_cooldown_key(deployment), 1, px=max(int(seconds * 1000), 1))
        pipe.delete(key)
        await pipe.execute()
    return True


async def record_success(deployment: str) -> None:
    """The deployment answered: its failures are no longer in a row."""
    redis = async_client()
    if redis is None:
        with _lock:
            _failures.pop(deployment, None)
        return
    await redis.delete(deployment_failures_key(deployment))
