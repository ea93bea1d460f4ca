"""Errors the accounts app raises beyond the shared ones in :mod:`core.errors`."""

from core.errors import Conflict, DomainError, InvalidCredentials


class AccountInactive(InvalidCredentials):
    """A Google sign-in proved who the caller is, but the account is deactivated."""

    default_message = "This account is deactivated."


class GoogleNotConfigured(DomainError):
    code = "google_not_configured"
    status_code = 503
    default_message = "Google sign-in is not configured on this server (GOOGLE_CLIENT_ID is empty)."


class GoogleUnavailable(DomainError):
    code = "google_unavailable"
    status_code = 502
    default_message = "Google's signing certificates could not be fetched; try again later."


class ApiKeyLimitReached(Conflict):
    """The user already holds ``API_KEYS_PER_USER`` live keys."""

    code = "api_key_limit"
    default_message = "You hold the most API keys allowed; revoke one first."
