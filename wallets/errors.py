"""The wallet's domain errors; :mod:`core.exceptions` renders them."""

from core.errors import Conflict, DomainError, NotFound


class InsufficientFunds(DomainError):
    """``details``: ``{"available": int, "required": int}``."""

    code = "insufficient_funds"
    status_code = 402
    default_message = "The wallet does not hold enough credits."

    def __init__(
        self,
        message: str | None = None,
        *,
        available: int | None = None,
        required: int | None = None,
        details: dict | None = None,
    ) -> None:
        if details is None and available is not None:
            details = {"available": available, "required": required}
        super().__init__(message, details=details)


class HoldNotFound(NotFound):
    default_message = "No such reservation."


class IdempotencyKeyReused(Conflict):
    default_message = "That idempotency key was already used for a different operation."


class InvalidCode(DomainError):
    """Unknown, expired, voided and used codes alike: the answer never says which."""

    code = "invalid_code"
    status_code = 400
    default_message = "That code is not valid."


class SpendCapReached(DomainError):
    """``details``: ``{"cap", "period": "day"|"month", "spent", "required"}``.

    Reserved credits count as spent until settled.
    """

    code = "spend_cap_reached"
    status_code = 402
    default_message = "This would spend more than the spending cap allows."
