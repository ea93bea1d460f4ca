"""Usage reads: a user's own usage for ``GET /api/usage/``, and the staff report of ``usage_report``.

What a user used is two tables: chat replies (assistant ``Message`` rows) and ``/v1/`` requests
(``UsageRecord`` rows). Each is aggregated by the database (``GROUP BY``) in one query, and the
two results are merged here, so a read costs two queries whatever the number of rows. Pending
replies and requests are left out: they have used nothing yet. Days are UTC.

The staff report's credits come from the ledger (``charge`` entries), which is what was taken
from wallets. A ledger entry names no category, so by category the report sums what the replies
and requests themselves cost (each charged one is exactly one ``charge`` entry of that amount;
a test holds the two equal); its rows are streamed from a server-side cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Count, F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from chats.models import Message, UsageRecord
from chats.usage.periods import bounds, utc_day
from wallets.models import LedgerEntry

GROUPS = ("day", "category", "key")


REPORT_GROUPS = ("day", "user", "category")


#: Rows fetched at a time by the report's server-side cursor.
REPORT_CHUNK = 2000


@dataclass
class UsageRow:
    replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0

    def add(self, row: dict) -> None:
        self.replies += row["replies"]
        self.prompt_tokens += row["prompt_tokens"] or 0
        self.completion_tokens += row["completion_tokens"] or 0
        self.cost += row["cost"] or 0

    def as_dict(self) -> dict:
        return {
            "replies": self.replies,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
        }


@dataclass
class AccountUsage:
    """A user's usage over a range: one row per group (``group_by``), and their totals."""

    group_by: str
    results: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


_SUMS = {
    "replies": Count("pk"),
    "prompt_tokens": Sum("prompt_tokens"),
    "completion_tokens": Sum("completion_tokens"),
    "cost": Sum("cost"),
}


def usage_for_user(*, user, date_from: dt.date, date_to: dt.date, group_by: str) -> AccountUsage:
    """The user's replies and ``/v1/`` requests of ``[date_from, date_to]``, grouped: two queries.

    Rows are ordered by their group (days oldest first, categories by slug, keys by prefix, the
    chat before the keys); groups without usage are left out. By key, chat replies have the key
    ``None``: they were not made with one.
    """
    start, end = bounds(date_from, date_to)
    replies = Message.objects.filter(
        session__user=user, role=Message.Role.ASSISTANT, created_at__gte=start, created_at__lt=end
    ).exclude(status=Message.Status.PENDING)
    requests = UsageRecord.objects.filter(user=user, created_at__gte=start, created_at__lt=end).exclude(
        status=UsageRecord.Status.PENDING
    )
    if group_by == "day":
        replies = replies.annotate(group=utc_day()).values("group")
        requests = requests.annotate(group=utc_day()).values("group")
    elif group_by == "category":
        replies = replies.values(group=F("session__category__slug"))
        requests = requests.values(group=F("category__slug"))
    elif group_by == "key":
        replies = replies.annotate(group=Value(None, output_field=IntegerField())).values("group")
        requests = requests.values(group=F("api_key_id"), prefix=F("api_key__prefix"))
    else:
        raise ValueError(f"unknown group_by {group_by!r}")

    merged: dict = {}
    prefixes: dict = {}
    for rows in (replies.annotate(**_SUMS).order_by(), requests.annotate(**_SUMS).order_by()):
        for row in rows:
            if not row["replies"]:  # a constant group (the chat's key) is one row even with no replies
                continue
            merged.setdefault(row["group"], UsageRow()).add(row)
            if "prefix" in row:
                prefixes[row["group"]] = row["prefix"]

    def label(group):
        if group_by == "key":
            return None if group is None else {"id": str(group), "prefix": prefixes[group]}
        return group

    def order(group):
        if group_by == "key":
            return (group is not None, prefixes.get(group, ""), str(group))
        return group

    totals = UsageRow()
    results = []
    for group in sorted(merged, key=order):
        row = merged[group]
        totals.add(row.as_dict())
        results.append({group_by: label(group), **row.as_dict()})
    return AccountUsage(group_by=group_by, results=results, totals=totals.as_dict())


REPORT_COLUMNS = ("charges", "credits")


def usage_report_rows(*, date_from: dt.date, date_to: dt.date, group_by: str) -> Iterator[tuple]:
    """``(group, charges, credits)`` for everyone over ``[date_from, date_to]``, as the database yields them.

    By day and by user from the ledger's ``charge`` entries (the user by login); by category from
    the charged replies and requests (two grouped queries; a category used by both appears once,
    their sums added, after the rows of the first query have been read through).
    """
    start, end = bounds(date_from, date_to)
    if group_by == "category":
        yield from _report_by_category(start, end)
        return
    charges = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CHARGE, created_at__gte=start, created_at__lt=end
    ).order_by()
    if group_by == "day":
        rows = charges.annotate(group=utc_day()).values("group")
    elif group_by == "user":
        rows = charges.values(group=F("wallet__user__login_id"))
    else:
        raise ValueError(f"unknown group_by {group_by!r}")
    rows = rows.annotate(charges=Count("pk"), credits=-Sum("amount")).order_by("group")
    yield from rows.values_list("group", "charges", "credits").iterator(chunk_size=REPORT_CHUNK)


def _report_by_category(start: dt.datetime, end: dt.datetime) -> Iterator[tuple]:
    """Charged replies and requests by category slug; one row per category (there are few of them)."""
    replies: QuerySet = Message.objects.filter(
        role=Message.Role.ASSISTANT, cost__gt=0, created_at__gte=start, created_at__lt=end
    ).values_list("session__category__slug")
    requests: QuerySet = UsageRecord.objects.filter(
        cost__gt=0, created_at__gte=start, created_at__lt=end
    ).values_list("category__slug")
    sums: dict[str, list[int]] = {}
    for rows in (replies, requests):
        grouped = rows.annotate(charges=Count("pk"), credits=Coalesce(Sum("cost"), 0)).order_by()
        for slug, charges, credits in grouped.iterator(chunk_size=REPORT_CHUNK):
            total = sums.setdefault(slug, [0, 0])
            total[0] += charges
            total[1] += credits
    for slug in sorted(sums):
        yield (slug, *sums[slug])
