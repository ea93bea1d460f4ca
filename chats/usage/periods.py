"""The periods usage is read over: UTC days, both ends included, 30 of them unless asked otherwise.

``GET /api/usage/``, the ``usage_report`` command and the admin's usage page all take a range of
whole UTC days; here are its default, its limit, and its bounds as instants for the queries.
"""

from __future__ import annotations

import datetime as dt

from django.db.models.functions import TruncDate
from django.utils import timezone

UTC = dt.UTC


DEFAULT_RANGE_DAYS = 30


MAX_RANGE_DAYS = 366


#: The last day a range may end on: its end is the start of the day after (``bounds``), and
#: ``date.max`` has none. Ranges may start as early as ``date.min``.
LAST_DAY = dt.date.max - dt.timedelta(days=1)


def today() -> dt.date:
    """The current UTC day."""
    return timezone.now().astimezone(UTC).date()


def default_range(*, end: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The ``DEFAULT_RANGE_DAYS`` UTC days that end with ``end`` (default: today), both included;
    fewer if ``end`` is one of the first days of the calendar."""
    end = end or today()
    return end - min(dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), end - dt.date.min), end


def span_days(start: dt.date, end: dt.date) -> int:
    """How many days ``start``..``end`` holds, both included."""
    return (end - start).days + 1


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day of ``start``..``end``, both included, in order."""
    return [start + dt.timedelta(days=offset) for offset in range(span_days(start, end))]


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start of start, start of the day after end)`` in UTC: ``end`` is included."""
    since = dt.datetime.combine(start, dt.time.min, tzinfo=UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=UTC)
    return since, until


def utc_day(field: str = "created_at") -> TruncDate:
    """The UTC day of ``field``, for grouping by day in the database."""
    return TruncDate(field, tzinfo=UTC)
