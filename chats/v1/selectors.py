"""Reads for ``/v1/``: the category a model names, and what a key has spent against its cap."""

from django.db.models import Sum

from chats.models import Category, UsageRecord
from core.db.rows import columns, fetch_one, instance_from_row, table
from wallets.models import Hold


def model_category(*, slug: str) -> Category | None:
    """The active category a ``/v1/`` request names as its ``model``, or None.

    Every ``/v1/`` request reads it: one plain statement, its row converted as
    the ORM converts it, since compiling the queryset costs more than running
    it (docs/benchmarks.md, issue 15's breakdown).
    """
    fields = Category._meta.concrete_fields
    sql = f"SELECT {columns(fields)} FROM {table(Category)} WHERE slug = %s AND is_active = %s"
    row = fetch_one(sql, [slug, True])
    return None if row is None else instance_from_row(Category, fields, row)


def api_key_spent(*, api_key, since, excluding=None) -> int:
    """Credits a key has spent since ``since``: settled requests' costs plus what pending ones hold."""
    records = UsageRecord.objects.filter(api_key=api_key, created_at__gte=since).exclude(pk=excluding)
    settled = records.exclude(status=UsageRecord.Status.PENDING).aggregate(total=Sum("cost"))["total"] or 0
    pending = records.filter(status=UsageRecord.Status.PENDING, hold_id__isnull=False).values("hold_id")
    held = Hold.objects.filter(pk__in=pending, status=Hold.Status.OPEN).aggregate(total=Sum("amount"))[
        "total"
    ]
    return settled + (held or 0)
