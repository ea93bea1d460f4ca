"""Input fields that take only the JSON type they name.

DRF's fields quietly coerce (``123`` into ``"123"``, ``"true"`` into ``True``,
``5.0`` into ``5``, a local time into the server's zone); the API's contract
is that a wrong type is a 400, so input serializers use these instead.
"""

from django.utils.dateparse import parse_datetime
from rest_framework import serializers


class StrictStringMixin:
    default_error_messages = {"not_a_string": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    pass


class StrictPositiveIntegerField(serializers.IntegerField):
    """A JSON integer from 1 up: no strings (``"5"``), floats (``5.0``) or booleans."""

    default_error_messages = {"not_an_integer": "A whole number is required (not a string or a fraction)."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its offset (``Z`` or ``+02:00``): a local time is ambiguous."""

    default_error_messages = {"naive": "Give the time zone: end with Z or an offset such as +02:00."}

    def to_internal_value(self, value):
        if not isinstance(value, str):
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]]±hh:mm")
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(value)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false`` only: DRF's ``BooleanField`` also takes ``"true"``, ``1``, ``"on"``…"""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
