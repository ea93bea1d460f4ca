"""Reads behind the staff usage page: credits spent per day and category, and the top spenders.

Credits spent are the costs of settled work: the usage records (``UsageRecord``) of chat replies
and ``/v1/`` requests that are no longer pending, kept when a session is deleted. Each one's cost
is what its ``charge`` ledger entry took (the entry that settled the record's hold), so these
sums equal the ledger's charges; reading the records gives the category without joining the
ledger to them. A day is a UTC day of the work's ``created_at``.

Every read is a fixed number of aggregate queries: the rows they return grow
with days times categories or are capped, never with the number of replies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from chats.models import Category, UsageRecord
from chats.usage.periods import bounds, utc_day


@dataclass(frozen=True)
class CategorySpend:
    day: dt.date
    category: Category
    credits: int


@dataclass(frozen=True)
class Spender:
    user_id: int
    login_id: str
    wallet_id: int | None
    credits: int


#: Where a reply whose category was not kept (see ``UsageRecord``) is drawn: after the others.
#: Never saved; its ``pk`` 0, which no row has, lets the chart tell it apart (and hash it).
UNKNOWN_CATEGORY = Category(pk=0, slug="", name="Unknown", order=2**31 - 1)


def _records(start: dt.date, end: dt.date) -> QuerySet[UsageRecord]:
    since, until = bounds(start, end)
    return (
        UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until, cost__gt=0)
        .exclude(status=UsageRecord.Status.PENDING)
        .order_by()
    )


def spend_by_day_and_category(*, start: dt.date, end: dt.date) -> list[CategorySpend]:
    """Credits spent per (UTC day, category) in ``start``..``end``, by day then category order."""
    rows = (
        _records(start, end)
        .annotate(day=utc_day())
        .values("day", "category_id")
        .annotate(credits=Sum("cost"))
    )
    totals = {(row["day"], row["category_id"]): row["credits"] for row in rows}
    categories = Category.objects.in_bulk({category_pk for _, category_pk in totals} - {None})
    spends = [
        CategorySpend(day=day, category=categories.get(category_pk, UNKNOWN_CATEGORY), credits=credits)
        for (day, category_pk), credits in totals.items()
    ]
    return sorted(spends, key=lambda spend: (spend.day, spend.category.order, spend.category.slug))


def top_spenders(*, start: dt.date, end: dt.date, limit: int = 10) -> list[Spender]:
    """The ``limit`` users who spent the most credits in ``start``..``end``, most first."""
    records = _records(start, end)
    spent = records.filter(user=OuterRef("pk")).values("user").annotate(total=Sum("cost"))
    rows = (
        User.objects.filter(pk__in=records.values("user"))
        .annotate(credits=Coalesce(Subquery(spent.values("total")), Value(0)))
        .order_by("-credits", "login_id")
        .values("pk", "login_id", "wallet__pk", "credits")[:limit]
    )
    return [
        Spender(
            user_id=row["pk"], login_id=row["login_id"], wallet_id=row["wallet__pk"], credits=row["credits"]
        )
        for row in rows
    ]
