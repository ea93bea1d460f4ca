"""How many replies a user runs at once: at most ``MAX_CONCURRENT_REPLIES``, across workers.

A user's running replies are a set of slots, each with a lease that its
reply renews while it runs: a slot whose worker died expires on its own,
so a crash never locks a user out for longer than a lease. In Redis (one
sorted set per user, scores = lease ends, taken by one Lua script, so two
workers can never both take the last slot); in the process without
``REDIS_URL``.
"""

import threading
import time

from django.conf import settings

from core.redis import replies_running_key, sync_client

# Drop expired slots, refuse if the user has ``limit`` live ones, else take one.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return 1
"""


def _lease() -> float:
    return settings.REPLY_LEASE_SECONDS * 2


_local: dict[object, dict[str, float]] = {}


_local_lock = threading.Lock()


def reply_slot_take(*, user_id, token: str) -> bool:
    """Take one of the user's slots for ``token``; False when all are taken."""
    now, limit = time.time(), settings.MAX_CONCURRENT_REPLIES
    if settings.REDIS_URL:
        client = sync_client()
        return bool(client.eval(_TAKE, 1, replies_running_key(user_id), now, _lease(), limit, token))
    with _local_lock:
        slots = {t: end for t, end in _local.get(user_id, {}).items() if end > now}
        if len(slots) >= limit:
            return False
        slots[token] = now + _lease()
        _local[user_id] = slots
        return True


def reply_slots_renew(slots: list[tuple]) -> None:
    """Extend the leases of running replies' slots, ``[(user_id, token), …]``, in one round trip."""
    end = time.time() + _lease()
    if settings.REDIS_URL:
        with sync_client().pipeline(transaction=False) as pipe:
            for user_id, token in slots:
                pipe.zadd(replies_running_key(user_id), {token: end}, xx=True)
                pipe.expire(replies_running_key(user_id), int(_lease()) + 1)
            pipe.execute()
        return
    with _local_lock:
        for user_id, token in slots:
            if token in _local.get(user_id, {}):
                _local[user_id][token] = end


def reply_slot_give_back(*, user_id, token: str) -> None:
    if settings.REDIS_URL:
        sync_client().zrem(replies_running_key(user_id), token)
        return
    with _local_lock:
        _local.get(user_id, {}).pop(token, None)
