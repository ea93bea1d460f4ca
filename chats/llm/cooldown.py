"""Which deployments are cooling down: skipped for a while after failing several times in a row.

A deployment that failed ``COOLDOWN_FAILURES`` times, each within
twice ``COOLDOWN_SECONDS`` of the one before, is skipped for
``COOLDOWN_SECONDS``, or for as long as its upstream's last ``Retry-After``
asked. "In a row" is counted that way rather than reset by each success, so
that a success costs no write: the usual request only reads. Shared by every
worker through Redis when ``REDIS_URL`` is set (a failure count and a
cooldown key per deployment, both expiring on their own), in the process
otherwise.

Only models with more than one deployment use it: with one there is nowhere
else to send a request, so it is always tried, and the single-upstream path
costs no Redis round trip.
"""

import threading
import time

from django.conf import settings

from core.redis import async_client, deployment_cooldown_key, deployment_failures_key

# Without Redis: (failures in a row, when the count lapses) and cooldown ends, by deployment.
_failures: dict[str, tuple[int, float]] = {}
_cool_until: dict[str, float] = {}
_lock = threading.Lock()


async def cooling(deployments: list[str]) -> set[str]:
    """The deployments of ``deployments`` that are cooling down now (one round trip with Redis)."""
    redis = async_client()
    if redis is None:
        now = time.monotonic()
        return {name for name in deployments if _cool_until.get(name, 0) > now}
    flags = await redis.mget([deployment_cooldown_key(name) for name in deployments])
    return {name for name, flag in zip(deployments, flags, strict=True) if flag is not None}


def _window() -> int:
    """How long a failure counts towards the next one."""
    return max(int(settings.COOLDOWN_SECONDS), 1) * 2


async def record_failure(deployment: str, *, retry_after: float | None) -> bool:
    """Count one more failure in a row; True when it starts the deployment's cooldown."""
    seconds = retry_after if retry_after else settings.COOLDOWN_SECONDS
    redis = async_client()
    if redis is None:
        now = time.monotonic()
        with _lock:
            count, lapses = _failures.get(deployment, (0, now))
            failures = (count if lapses > now else 0) + 1
            if failures < settings.COOLDOWN_FAILURES:
                _failures[deployment] = (failures, now + _window())
                return False
            _failures.pop(deployment, None)
            _cool_until[deployment] = now + seconds
            return True
    key = deployment_failures_key(deployment)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, _window())
        failures, _ = await pipe.execute()
    if failures < settings.COOLDOWN_FAILURES:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(deployment_cooldown_key(deployment), 1, px=max(int(seconds * 1000), 1))
        pipe.delete(key)
        await pipe.execute()
    return True
