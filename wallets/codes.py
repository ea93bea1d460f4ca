"""Redemption codes: making batches of them, redeeming one, voiding a batch.

Apart from ``wallets.services`` because codes are their own sub-domain (two
models, a command, admin pages, an endpoint and its throttles) whose only tie
to the wallet is the top-up a redemption writes; that top-up goes through the
ledger's own ``_ledger_write``, in this module's transaction, so the balance
and its entry are moved in exactly one place.

A code is 16 characters of a 32-letter alphabet (80 bits from ``secrets``),
printed as four groups of four. Only its SHA-256 is stored: whoever reads the
database cannot redeem a code. A code is claimed by one conditional UPDATE of
its row, in the same durable transaction as the top-up it pays for, so of
any number of concurrent redemptions exactly one credits the wallet.
Making, redeeming and voiding are each ``atomic(durable=True)``, like the
outermost operations of ``wallets.services``.
"""

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.errors import ValidationFailed
from wallets.errors import InvalidCode
from wallets.models import CodeBatch, LedgerEntry, RedemptionCode
from wallets.services import _Entry, _ledger_write
from wallets.validation import DESCRIPTION_MAX, _whole_credits

#: No 0/O or 1/I: what is read off a card is what gets typed.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LENGTH = 4, 4
CODE_BATCH_MAX = 10_000
CODE_BATCH_NAME_MAX = CodeBatch._meta.get_field("name").max_length


def redeem_key(code_id: int) -> str:
    """The top-up's key, in the ``system`` scope: one code cannot pay twice, whatever else fails."""
    return f"redeem:{code_id}"


def code_normalise(code: str) -> str:
    """What was typed, without spaces or dashes, in upper case: ``abcd-efgh …`` is ``ABCDEFGH…``."""
    return "".join(char for char in code if not char.isspace() and char != "-").upper()


def code_digest(code: str) -> str:
    return hashlib.sha256(code_normalise(code).encode("utf-8", "surrogatepass")).hexdigest()


def _code_new() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LENGTH))
    return "-".join(chars[i : i + CODE_GROUP_LENGTH] for i in range(0, len(chars), CODE_GROUP_LENGTH))


def _batch_name(name: Any) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text:
        raise ValidationFailed(details={"name": ["A name is required."]})
    if len(text) > CODE_BATCH_NAME_MAX:
        raise ValidationFailed(details={"name": [f"At most {CODE_BATCH_NAME_MAX} characters."]})
    return text


def _batch_count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= CODE_BATCH_MAX:
        raise ValidationFailed(details={"count": [f"A whole number from 1 to {CODE_BATCH_MAX}."]})
    return count


def _batch_expiry(expires_at: Any) -> datetime | None:
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime) or timezone.is_naive(expires_at):
        raise ValidationFailed(details={"expires_at": ["A date and time with its time zone."]})
    if expires_at <= timezone.now():
        raise ValidationFailed(details={"expires_at": ["Must be in the future."]})
    return expires_at


def code_batch_create(
    *, name: str, count: int, credits: int, expires_at: datetime | None = None, actor=None
) -> tuple[CodeBatch, list[str]]:
    """Make ``count`` codes worth ``credits`` each; the plain codes are returned here and never again.

    ``actor`` is the staff member (None when an operator runs ``create_codes``).
    """
    name, count = _batch_name(name), _batch_count(count)
    credits = _whole_credits(credits, field="credits")
    expires_at = _batch_expiry(expires_at)
    codes: dict[str, str] = {}
    while len(codes) < count:  # a repeat within the batch is astronomically rare, but cheap to rule out
        code = _code_new()
        codes[code_digest(code)] = code
    with transaction.atomic(durable=True):
        batch = CodeBatch.objects.create(
            name=name, credits=credits, count=count, expires_at=expires_at, created_by=actor
        )
        RedemptionCode.objects.bulk_create(
            [RedemptionCode(batch=batch, digest=digest) for digest in codes], batch_size=1000
        )
    return batch, list(codes.values())


def code_redeem(*, user, code: str) -> LedgerEntry:
    """Credit the batch's credits to the user's wallet as a ``topup`` naming the batch; once per code.

    Unknown, expired, voided and already redeemed codes all raise the same
    ``InvalidCode``. The claim is one ``UPDATE`` whose conditions are all on
    the code's own row (the batch's expiry in an ``EXISTS``, not a join, so
    PostgreSQL re-checks them on the row a concurrent claim just changed):
    the losers of a race update nothing.
    """
    if not isinstance(code, str):
        raise InvalidCode()
    digest, now = code_digest(code), timezone.now()
    live_batch = CodeBatch.objects.filter(pk=OuterRef("batch_id")).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    with transaction.atomic(durable=True):
        claimed = (
            RedemptionCode.objects.filter(digest=digest, redeemed_at__isnull=True, voided_at__isnull=True)
            .filter(Exists(live_batch))
            .update(redeemed_by=user, redeemed_at=now)
        )
        if claimed != 1:
            raise InvalidCode()
        redemption = RedemptionCode.objects.select_related("batch").get(digest=digest)
        batch = redemption.batch
        entry = _Entry(
            LedgerEntry.Kind.TOPUP,
            batch.credits,
            f"Redemption code of batch {batch.name!r} (#{batch.pk})"[:DESCRIPTION_MAX],
            redeem_key(redemption.pk),
            None,
        )
        topup = _ledger_write(user=user, entry=entry, key_scope=LedgerEntry.KeyScope.SYSTEM)
        RedemptionCode.objects.filter(pk=redemption.pk).update(entry=topup)
    return topup


def code_batch_void(*, batch: CodeBatch, actor) -> int:
    """Void every code of ``batch`` not yet redeemed (or voided); how many were voided.

    Redeemed codes keep their top-ups. A redemption racing the void either
    claimed its code first (and is kept) or finds it voided.
    """
    with transaction.atomic(durable=True):
        return RedemptionCode.objects.filter(
            batch=batch, redeemed_at__isnull=True, voided_at__isnull=True
        ).update(voided_at=timezone.now(), voided_by=actor)
