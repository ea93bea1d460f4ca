"""Reads behind the staff usage page: credits spent per day and category, and the top spenders.

Credits spent are the costs of settled work: assistant replies (``Message``)
and ``/v1/`` requests (``UsageRecord``) that are no longer pending. Each one's
cost is what its ``charge`` ledger entry took, so these sums equal the
ledger's charges; reading the two tables directly gives the category without
joining the ledger to them through ``hold_id``. A day is a UTC day of the
work's ``created_at``.

Every read is a fixed number of aggregate queries: the rows they return grow
with days times categories or are capped, never with the number of replies.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from chats.models import Category, Message, UsageRecord
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


def _replies(start: dt.date, end: dt.date) -> QuerySet[Message]:
    since, until = bounds(start, end)
    return (
        Message.objects.filter(
            role=Message.Role.ASSISTANT, created_at__gte=since, created_at__lt=until, cost__gt=0
        )
        .exclude(status=Message.Status.PENDING)
        .order_by()
    )


def _requests(start: dt.date, end: dt.date) -> QuerySet[UsageRecord]:
    since, until = bounds(start, end)
    return (
        UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until, cost__gt=0)
        .exclude(status=UsageRecord.Status.PENDING)
        .order_by()
    )


def spend_by_day_and_category(*, start: dt.date, end: dt.date) -> list[CategorySpend]:
    """Credits spent per (UTC day, category) in ``start``..``end``, by day then category order."""
    totals: dict[tuple[dt.date, int], int] = defaultdict(int)
    for queryset, category in (
        (_replies(start, end), "session__category_id"),
        (_requests(start, end), "category_id"),
    ):
        rows = (
            queryset.annotate(day=utc_day())
            .values("day", category_pk=F(category))
            .annotate(credits=Sum("cost"))
        )
        for row in rows:
            totals[row["day"], row["category_pk"]] += row["credits"]
    categories = Category.objects.in_bulk({category_pk for _, category_pk in totals})
    spends = [
        CategorySpend(day=day, category=categories[category_pk], credits=credits)
        for (day, category_pk), credits in totals.items()
    ]
    return sorted(spends, key=lambda spend: (spend.day, spend.category.order, spend.category.slug))


def top_spenders(*, start: dt.date, end: dt.date, limit: int = 10) -> list[Spender]:
    """The ``limit`` users who spent the most credits in ``start``..``end``, most first."""
    replies, requests = _replies(start, end), _requests(start, end)
    chat = replies.filter(session__user=OuterRef("pk")).values("session__user").annotate(total=Sum("cost"))
    api = requests.filter(user=OuterRef("pk")).values("user").annotate(total=Sum("cost"))
    rows = (
        User.objects.filter(Q(pk__in=replies.values("session__user")) | Q(pk__in=requests.values("user")))
        .annotate(
            credits=Coalesce(Subquery(chat.values("total")), Value(0))
            + Coalesce(Subquery(api.values("total")), Value(0))
        )
        .order_by("-credits", "login_id")
        .values("pk", "login_id", "wallet__pk", "credits")[:limit]
    )
    return [
        Spender(
            user_id=row["pk"], login_id=row["login_id"], wallet_id=row["wallet__pk"], credits=row["credits"]
        )
        for row in rows
    ]
