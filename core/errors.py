"""The one family of domain errors.

Services raise subclasses of :class:`DomainError`; the exception handler in
:mod:`core.exceptions` renders every one of them in the spec's error shape, so
no view builds an error response by hand.
"""

from typing import Any


class DomainError(Exception):
    """A failure the client can act on: a stable ``code``, a sentence, a status."""

    code = "error"
    status_code = 400
    default_message = "The request could not be completed."
    #: When set, the answer carries ``Retry-After``: a temporary refusal, worth retrying then.
    retry_after_seconds: int | None = None

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "validation_error"
    status_code = 400
    default_message = "The request is not valid."


class NotFound(DomainError):
    code = "not_found"
    status_code = 404
    default_message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    status_code = 409
    default_message = "The request conflicts with the current state."


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 401
    default_message = "The login id or password is wrong."


class TokenNotValid(DomainError):
    code = "token_not_valid"
    status_code = 401
    default_message = "The token is invalid or expired."


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status_code = 413
    default_message = "The request body is too large."


class ServiceUnavailable(DomainError):
    """A dependency (the database, Redis) does not answer: a 503 the client may retry, never a 500.

    ``details.dependency`` names it; the answer carries ``Retry-After``.
    """

    code = "service_unavailable"
    status_code = 503
    default_message = "A service Parley depends on is unavailable; try again in a moment."
    retry_after_seconds = 5

    def __init__(self, dependency: str) -> None:
        super().__init__(details={"dependency": dependency})


def dependency_down(exc: BaseException) -> ServiceUnavailable | None:
    """The :class:`ServiceUnavailable` an exception means, if it is a dependency failing to answer
    (refused, reset, timed out), rather than our code being wrong."""
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return ServiceUnavailable("redis")
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable("database")
    return None
