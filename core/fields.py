"""Input fields that take JSON strings only.

DRF's ``CharField`` quietly turns ``123`` into ``"123"``; the API's contract
is that a wrong type is a 400, so input serializers use these instead.
"""

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
