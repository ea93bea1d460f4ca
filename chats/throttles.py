"""The per-user rate limit on sending messages.

Counted in the Django cache, which is Redis when ``REDIS_URL`` is set, so
every worker shares one count. The rate is read from settings on every
request so tests and operators can change it.
"""

from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class MessageThrottle(UserRateThrottle):
    scope = "message"

    def get_rate(self) -> str:
        return settings.MESSAGE_THROTTLE_RATE
