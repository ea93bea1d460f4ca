"""Checks of the amounts, reasons and keys a caller gives, shared by every write to money.

Apart so that ``wallets.services`` and ``wallets.codes`` refuse the same input
with the same ``ValidationFailed``, before any row is locked. The names keep
their underscore: private to the app, not part of its API.
"""

from typing import Any

from core.errors import ValidationFailed
from wallets.models import CREDITS_MAX, LedgerEntry

DESCRIPTION_MAX = LedgerEntry._meta.get_field("description").max_length
KEY_MAX = LedgerEntry._meta.get_field("idempotency_key").max_length


def _whole_credits(value: Any, *, field: str = "amount", positive: bool = True, zero: bool = False) -> int:
    """``value`` if it is a whole number of credits the money columns can hold.

    ``positive``: greater than zero (or zero too, with ``zero``); otherwise
    signed and not zero.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(details={field: ["Must be a whole number of credits."]})
    if positive and zero and value < 0:
        raise ValidationFailed(details={field: ["Must be zero or more."]})
    if positive and not zero and value <= 0:
        raise ValidationFailed(details={field: ["Must be greater than zero."]})
    if not positive and value == 0:
        raise ValidationFailed(details={field: ["Must not be zero."]})
    if abs(value) > CREDITS_MAX:
        raise ValidationFailed(details={field: [f"Must be at most {CREDITS_MAX} credits."]})
    return value


def _reason(reason: Any) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationFailed(details={"reason": ["A reason is required."]})
    if len(text) > DESCRIPTION_MAX:
        raise ValidationFailed(details={"reason": [f"At most {DESCRIPTION_MAX} characters."]})
    return text


def _key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > KEY_MAX:
        raise ValidationFailed(
            details={"idempotency_key": [f"A non-empty string of at most {KEY_MAX} characters."]}
        )
    return key
