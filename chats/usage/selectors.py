"""Usage reads: a user's own usage for ``GET /api/usage/``, and the staff report of ``usage_report``.

What a user used is their ``UsageRecord`` rows: one per ``/v1/`` request and one per chat reply
(written as the reply ends, and kept when its session is deleted, as the ledger keeps its
charge). A read is one query grouped by the database (``GROUP BY``), whatever the number of
rows. Pending requests are left out: they have used nothing yet. Days are UTC.

The staff report's credits come from the ledger (``charge`` entries), which is what was taken
from wallets. A ledger entry names no category, so by category the report sums what the records
themselves cost (each charged one is exactly one ``charge`` entry of that amount, the one that
settled its hold; a test holds the two equal); its rows are streamed from a server-side cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from chats.models import UsageRecord
from chats.usage.periods import bounds, utc_day
from wallets.models import LedgerEntry

GROUPS = ("day", "category", "model", "key")


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
    """The user's replies and ``/v1/`` requests of ``[date_from, date_to]``, grouped: one query.

    Rows are ordered by their group (days oldest first, categories by slug, models by id, keys by
    prefix, the chat before the keys); groups without usage are left out. By key, chat replies
    have the key ``None``: they were not made with one. By category (or model), a reply whose
    category was not kept (see ``UsageRecord``) has ``None``, after the others; by category, a
    ``/v1/`` request that named a catalogue model rather than a category has ``None`` too.
    """
    start, end = bounds(date_from, date_to)
    records = UsageRecord.objects.filter(user=user, created_at__gte=start, created_at__lt=end).exclude(
        status=UsageRecord.Status.PENDING
    )
    if group_by == "day":
        rows = records.annotate(group=utc_day()).values("group")
    elif group_by == "category":
        rows = records.values(group=F("category__slug"))
    elif group_by == "model":
        rows = records.values(group=F("model__public_id"))
    elif group_by == "key":
        rows = records.values(group=F("api_key_id"), prefix=F("api_key__prefix"))
    else:
        raise ValueError(f"unknown group_by {group_by!r}")

    merged: dict = {}
    prefixes: dict = {}
    for row in rows.annotate(**_SUMS).order_by():
        merged.setdefault(row["group"], UsageRow()).add(row)
        if row.get("prefix") is not None:
            prefixes[row["group"]] = row["prefix"]

    def label(group):
        if group_by == "key":
            return None if group is None else {"id": str(group), "prefix": prefixes[group]}
        return group

    def order(group):
        if group_by == "key":
            return (group is not None, prefixes.get(group, ""), str(group))
        if group_by in ("category", "model"):
            return (group is None, group or "")
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
    the charged usage records (one grouped query).
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
    """Charged replies and requests by category slug (``None``: not kept, after the others)."""
    charged: QuerySet = UsageRecord.objects.filter(cost__gt=0, created_at__gte=start, created_at__lt=end)
    grouped = (
        charged.values_list("category__slug")
        .annotate(charges=Count("pk"), credits=Coalesce(Sum("cost"), 0))
        .order_by()
    )
    rows = list(grouped.iterator(chunk_size=REPORT_CHUNK))  # one row per category: there are few
    yield from sorted(rows, key=lambda row: (row[0] is None, row[0] or ""))


def usage_audit() -> Iterator[str]:
    """Where usage and the ledger disagree: a line for each, for ``audit_wallets`` (two queries).

    Each ``charge`` entry must have the usage record of its hold, which cost what the entry took;
    each settled record that cost anything must have that charge. Then the records' costs add up
    to the ledger's charges, however many sessions were deleted.
    """
    recorded = UsageRecord.objects.filter(hold_id=OuterRef("hold_id"))
    charges = (
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE)
        .annotate(recorded=Exists(recorded), recorded_cost=Subquery(recorded.values("cost")[:1]))
        .filter(Q(recorded=False) | ~Q(recorded_cost=-F("amount")))
        .select_related("wallet__user")
        .order_by("pk")
    )
    for entry in charges.iterator(chunk_size=REPORT_CHUNK):
        found = "no usage record" if not entry.recorded else f"a usage record of {entry.recorded_cost}"
        yield (
            f"wallet {entry.wallet_id} ({entry.wallet.user.login_id}): charge {entry.pk} of {-entry.amount} "
            f"({entry.description}) has {found}"
        )
    charged = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, hold_id=OuterRef("hold_id"))
    uncharged = (
        UsageRecord.objects.filter(cost__gt=0)
        .exclude(status=UsageRecord.Status.PENDING)
        .exclude(Exists(charged))
        .select_related("user")
        .order_by("created_at", "pk")
    )
    for record in uncharged.iterator(chunk_size=REPORT_CHUNK):
        yield f"user {record.user.login_id}: usage record {record.pk} cost {record.cost} and has no charge"
