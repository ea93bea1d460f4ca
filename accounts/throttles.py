"""Rate limits on the endpoints that check a password: per client address and per account.

Both keys are needed: the address alone lets a botnet guess one account's
password; the account alone lets one client sweep many accounts. Every limit
counts in the Django cache (Redis in production, shared by the workers) through
DRF's ``SimpleRateThrottle``, and reads ``AUTH_THROTTLE_RATE`` on every request
so tests and operators can change it.

Sign-in, sign-up and password changes count every request. The admin's login
page (a Django view, not DRF) counts failed attempts only: see
:class:`AdminLoginThrottle`.
"""

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import login_key_digest


class AuthRateThrottle(SimpleRateThrottle):
    """A ``SimpleRateThrottle`` at ``AUTH_THROTTLE_RATE``; subclasses say what they count by."""

    def get_rate(self) -> str:
        return settings.AUTH_THROTTLE_RATE


class AuthIPThrottle(AuthRateThrottle):
    scope = "auth_ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthLoginIdThrottle(AuthRateThrottle):
    scope = "auth_login_id"

    def get_cache_key(self, request, view) -> str | None:
        login_id = request.data.get("login_id") if isinstance(request.data, dict) else None
        if not isinstance(login_id, str) or not login_id:
            return None
        # The body is not validated yet: the id may be long or hold any character, even a lone
        # surrogate. The digest of its key is a safe cache key, shared by fullwidth ``ada`` and ``ADA``.
        return self.cache_format % {"scope": self.scope, "ident": login_key_digest(login_id)}


class PasswordChangeIPThrottle(AuthRateThrottle):
    scope = "password_ip"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PasswordChangeUserThrottle(AuthRateThrottle):
    """Per account: a stolen access token must not buy unlimited guesses of the current password."""

    scope = "password_user"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AdminLoginThrottle(AuthRateThrottle):
    """Failed logins on ``/admin/login/``, per address (``ident=None``) or per login id.

    Unlike DRF's ``allow_request``, which counts every request it lets through,
    :meth:`over_limit` only looks and :meth:`record_failure` counts, so that
    staff who sign in correctly are never slowed down.
    """

    def __init__(self, scope: str, request: HttpRequest, login_id: str | None = None) -> None:
        self.scope = scope
        super().__init__()
        ident = self.get_ident(request) if login_id is None else login_key_digest(login_id)
        self.key = self.cache_format % {"scope": scope, "ident": ident}

    def over_limit(self) -> bool:
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        return len(self.history) >= self.num_requests

    def record_failure(self) -> None:
        self.over_limit()  # refresh the history and the clock
        self.throttle_success()
