"""Pagination shared by every list: ``{"results", "next", "previous"}``.

Cursor pagination keeps pages stable while new rows arrive (a chat grows at
its end) and costs one query per page however deep the client reads.
"""

from datetime import UTC, datetime

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


class CursorPagination(pagination.CursorPagination):
    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request) -> int:
        """A ``page_size`` that is not an integer from 1 to the maximum is a 400, not silently ignored."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise ValidationError(
                {self.page_size_query_param: [f"An integer from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """DRF's decoding, plus a check that the position is a value of the ordering field.

        A cursor is base64 of ``o=<offset>&r=<reverse>&p=<position>``, where the position is the
        first ordering field's value in the last row shown. DRF filters on the position as given,
        so a crafted one (``p=abc`` for a date, a NUL byte, a date that overflows when converted
        to UTC) would fail inside the query as a 500: here it is the 404 of any cursor not ours.
        """
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            field = _ordering_field(self._model, self.ordering[0].lstrip("-"))
            if not _is_position_of(field, cursor.position):
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


def _ordering_field(model: type[models.Model], path: str) -> models.Field | None:
    """The model field an ordering such as ``created_at`` or ``session__created_at`` names."""
    field = None
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if field.is_relation:
            model = field.related_model
    return field


def _is_position_of(field: models.Field | None, position: str) -> bool:
    """Whether ``position`` is a value ``field`` can hold (and the database can compare with)."""
    if "\x00" in position:  # no column type stores NUL; PostgreSQL refuses it in any string
        return False
    if field is None:
        return True
    try:
        value = field.to_python(position)
        field.run_validators(value)
    except (DjangoValidationError, TypeError, ValueError, OverflowError):
        return False
    if isinstance(value, datetime):
        if value.tzinfo is None:  # the positions we hand out carry their offset
            return False
        try:  # the value is compared in UTC: a year-9999 date at -14:00 overflows into year 10000
            value.astimezone(UTC)
        except OverflowError:
            return False
    return True
