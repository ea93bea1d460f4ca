"""Rate limits on redeeming codes: per user and per client address.

Both are needed: per user alone, one client with many accounts guesses
codes as fast as it can sign up; per address alone, a botnet guesses for one
account. Counted in the Django cache (Redis in production, shared by every
worker) through DRF's ``SimpleRateThrottle``; ``REDEEM_THROTTLE_RATE`` is
read on every request so tests and operators can change it.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class RedeemRateThrottle(SimpleRateThrottle):
    """A ``SimpleRateThrottle`` at ``REDEEM_THROTTLE_RATE``; subclasses say what they count by."""

    def get_rate(self) -> str:
        return settings.REDEEM_THROTTLE_RATE


class RedeemUserThrottle(RedeemRateThrottle):
    scope = "redeem_user"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class RedeemIPThrottle(RedeemRateThrottle):
    scope = "redeem_ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
