"""``GET /api/usage/`` on the wire: its query, and the totals and rows it answers."""

import re

from rest_framework import serializers
from rest_framework.fields import empty

from chats.conversations.serializers import QueryStringSerializer
from chats.usage.periods import DEFAULT_RANGE_DAYS, LAST_DAY, MAX_RANGE_DAYS, default_range, span_days, today
from chats.usage.selectors import GROUPS


class UsageDateField(serializers.DateField):
    """A UTC day written ``YYYY-MM-DD``, exactly: DRF takes ``2026-1-1``, and an empty value as none."""

    def __init__(self, **kwargs):
        super().__init__(input_formats=["%Y-%m-%d"], required=False, **kwargs)

    def get_value(self, dictionary):
        # DRF reads a form's (and a query string's) empty value as "not given" (``fields.empty``).
        return dictionary.get(self.field_name, empty)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class UsageQuerySerializer(QueryStringSerializer):
    """``GET /api/usage/``'s query: ``from`` and ``to`` (UTC days, both included) and ``group_by``.

    ``from`` is a Python keyword, so its field is added in :meth:`get_fields`. The dates say
    themselves what is wrong with a blank one.
    """

    blank_allowed = ("from", "to")

    to = UsageDateField(help_text="The last UTC day, included (default: today).")
    group_by = serializers.ChoiceField(choices=GROUPS, default="day")

    def get_fields(self):
        fields = super().get_fields()
        fields = {
            "from": UsageDateField(
                help_text=f"The first UTC day (default: {DEFAULT_RANGE_DAYS - 1} days before `to`).",
            ),
            **fields,
        }
        return fields

    def validate(self, attrs):
        date_to = attrs.get("to") or today()
        if date_to > LAST_DAY:
            raise serializers.ValidationError({"to": [f"Must be {LAST_DAY.isoformat()} or earlier."]})
        date_from = attrs.get("from") or default_range(end=date_to)[0]
        if date_from > date_to:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        if span_days(date_from, date_to) > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": [f"The range may span at most {MAX_RANGE_DAYS} days."]}
            )
        return {"date_from": date_from, "date_to": date_to, "group_by": attrs["group_by"]}


class AccountUsageKeySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    prefix = serializers.CharField()


class AccountUsageTotalsSerializer(serializers.Serializer):
    replies = serializers.IntegerField(help_text="Chat replies and `/v1/` requests.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.IntegerField(help_text="Credits.")


class AccountUsageRowSerializer(AccountUsageTotalsSerializer):
    """One group: exactly one of ``day``, ``category``, ``model`` and ``key``, as ``group_by`` asks."""

    day = serializers.DateField(required=False)
    category = serializers.CharField(
        required=False,
        allow_null=True,
        help_text=(
            "The category's slug; `null` for replies whose category was not kept (charged before "
            "chat replies had usage records, their session deleted before then)."
        ),
    )
    model = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The catalogue model's id; `null` for replies whose model was not kept (as for category).",
    )
    key = AccountUsageKeySerializer(
        required=False, allow_null=True, help_text="The API key; `null` for chat replies (made with no key)."
    )

    def to_representation(self, row: dict) -> dict:
        data = super().to_representation(row)
        order = ("day", "category", "model", "key", *AccountUsageTotalsSerializer._declared_fields)
        return {name: data[name] for name in order if name in row}


class AccountUsageSerializer(serializers.Serializer):
    results = AccountUsageRowSerializer(many=True)
    totals = AccountUsageTotalsSerializer()
