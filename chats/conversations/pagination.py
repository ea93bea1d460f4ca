"""Keyset cursors for the session list, whose order has more than one key.

DRF's ``CursorPagination`` keeps the first ordering field's value as the cursor's position and
counts the rows that share it in an offset. The session list orders by ``pinned`` first: every
unpinned session shares one position, so the offset would grow with the account (one query
reading every earlier row) until DRF's offset cap, where paging stops. Here the position is the
last row's whole key (``pinned``, ``rank`` when searching, ``updated_at``, ``id``), and the next
page is the rows beyond it in the queryset's own order: no offset, one query per page however
deep, and no row shown twice or skipped however many share a date.
"""

from datetime import UTC, datetime
from math import isfinite
from uuid import UUID

from django.db import models
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor

from core.pagination import CursorPagination

SEPARATOR = "|"  # in none of the values: "1"/"0", ISO dates, UUIDs, floats


class KeysetCursorPagination(CursorPagination):
    """Pages a queryset by its own ``order_by``, which must end in a unique field (``id``)."""

    ordering = ()  # the queryset's (a selector orders it)

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.keys = _keys(queryset)
        self.cursor = self.decode_cursor(request)
        position = None if self.cursor is None else self.cursor.position
        reverse = self.cursor is not None and self.cursor.reverse

        ordering = [f"{'-' if descending != reverse else ''}{name}" for name, descending, _ in self.keys]
        queryset = queryset.order_by(*ordering)
        if position is not None:
            queryset = queryset.filter(self._beyond(_parse(self.keys, position), reverse=reverse))
        rows = list(queryset[: self.page_size + 1])
        self.page = rows[: self.page_size]
        more = len(rows) > self.page_size
        if reverse:
            self.page.reverse()
        self.has_next = position is not None if reverse else more
        self.has_previous = more if reverse else position is not None
        return self.page

    def decode_cursor(self, request):
        """DRF's decoding (a 404 for what is not base64 of ``o=&r=&p=``), then the position's check.

        ``core.pagination``'s check reads the position as one field's value; here it is a tuple,
        and one that is not a value of each key (a crafted cursor) is the same 404.
        """
        cursor = pagination.CursorPagination.decode_cursor(self, request)
        if cursor is not None and cursor.position is not None and _parse(self.keys, cursor.position) is None:
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        position = self._position_of(self.page[-1]) if self.page else self.cursor.position
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=position))

    def get_previous_link(self) -> str | None:
        if not self.has_previous:
            return None
        position = self._position_of(self.page[0]) if self.page else self.cursor.position
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=position))

    def _position_of(self, row) -> str:
        values = (row[name] if isinstance(row, dict) else getattr(row, name) for name, _, _ in self.keys)
        return SEPARATOR.join(_format(value) for value in values)

    def _beyond(self, values: list, *, reverse: bool) -> Q:
        """Rows after ``values`` this way: the first key beyond, or equal and the next one beyond…"""
        condition = Q(pk__in=[])
        for index in reversed(range(len(self.keys))):
            name, descending, _ = self.keys[index]
            lookup = "lt" if descending != reverse else "gt"
            condition = Q(**{f"{name}__{lookup}": values[index]}) | (Q(**{name: values[index]}) & condition)
        return condition


def _keys(queryset: QuerySet) -> list[tuple[str, bool, models.Field]]:
    """``(name, descending, field)`` of each key of the queryset's ordering."""
    keys = []
    for term in queryset.query.order_by:
        name = term.lstrip("-")
        annotation = queryset.query.annotations.get(name)
        field = annotation.output_field if annotation is not None else queryset.model._meta.get_field(name)
        keys.append((name, term.startswith("-"), field))
    assert keys and keys[-1][0] in {"id", "pk"}, "a keyset ordering ends in a unique key"
    return keys


def _format(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _parse(keys, position: str) -> list | None:
    """The values ``position`` holds, one per key, or ``None`` if it is not a position of ours."""
    parts = position.split(SEPARATOR)
    if len(parts) != len(keys) or "\x00" in position:
        return None
    values = []
    for part, (_, _, field) in zip(parts, keys, strict=True):
        value = _parse_value(field, part)
        if value is None:
            return None
        values.append(value)
    return values


def _parse_value(field: models.Field, text: str):
    if isinstance(field, models.BooleanField):
        return {"1": True, "0": False}.get(text)
    if isinstance(field, models.FloatField):
        try:
            value = float(text)
        except ValueError:
            return None
        return value if isfinite(value) else None
    if isinstance(field, models.DateTimeField):
        try:
            value = parse_datetime(text)
            # Compared in UTC: a year-9999 date at -14:00 would overflow into year 10000.
            value.astimezone(UTC)
        except (ValueError, TypeError, AttributeError, OverflowError):
            return None
        return value if value.tzinfo is not None else None  # the positions handed out carry their offset
    if isinstance(field, models.UUIDField):
        try:
            return UUID(text)
        except ValueError:
            return None
    raise TypeError(f"no cursor position for a {type(field).__name__}")
