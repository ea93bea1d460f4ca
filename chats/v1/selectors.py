"""Reads for ``/v1/``: what a key has spent against its cap."""

from django.db.models import Sum

from chats.models import UsageRecord
from wallets.models import Hold


def api_key_spent(*, api_key, since, excluding=None) -> int:
    """Credits a key has spent since ``since``: settled requests' costs plus what pending ones hold."""
    records = UsageRecord.objects.filter(api_key=api_key, created_at__gte=since).exclude(pk=excluding)
    settled = records.exclude(status=UsageRecord.Status.PENDING).aggregate(total=Sum("cost"))["total"] or 0
    pending = records.filter(status=UsageRecord.Status.PENDING, hold_id__isnull=False).values("hold_id")
    held = Hold.objects.filter(pk__in=pending, status=Hold.Status.OPEN).aggregate(total=Sum("amount"))[
        "total"
    ]
    return settled + (held or 0)
