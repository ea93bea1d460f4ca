"""Rate limits on sign-in and sign-up: per client address and per login id.

Both keys are needed: the address alone lets a botnet guess one account's
password; the login id alone lets one client sweep many accounts. The rate
is read from settings on every request so tests and operators can change it.
"""

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class AuthIPThrottle(SimpleRateThrottle):
    scope = "auth_ip"

    def get_rate(self) -> str:
        return settings.AUTH_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthLoginIdThrottle(SimpleRateThrottle):
    scope = "auth_login_id"

    def get_rate(self) -> str:
        return settings.AUTH_THROTTLE_RATE

    def get_cache_key(self, request, view) -> str | None:
        login_id = request.data.get("login_id") if isinstance(request.data, dict) else None
        if not isinstance(login_id, str) or not login_id:
            return None
        # Hashed: the body is not validated yet, so the id may be long or hold any character.
        ident = hashlib.sha256(login_id.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
