from rest_framework import serializers

from chats.models import Category, Message
from core.fields import StrictCharField, StrictSlugField


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name", "description", "prompt_price", "completion_price"]
        read_only_fields = fields


# The read-only shapes of a session and a message are plain ``Serializer``s: a
# ``ModelSerializer`` rebuilds its fields from the model on every
# instantiation, and these two are built for every reply and every page
# (docs/benchmarks.md).


class SessionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    category = serializers.CharField(source="category.slug", read_only=True)
    title = serializers.CharField(read_only=True)
    notes = serializers.CharField(read_only=True)
    pinned = serializers.BooleanField(read_only=True)
    archived = serializers.BooleanField(read_only=True)
    message_count = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    last_message_at = serializers.DateTimeField(read_only=True, allow_null=True)


class SessionRowSerializer(serializers.BaseSerializer):
    """A row of ``selectors.session_rows_for_user`` in :class:`SessionSerializer`'s shape.

    For the session list, whose pages are built from ``values()`` rows: DRF's
    per-field work over a page (a field lookup, a timezone check and a format
    for each of 8 fields of 20-100 sessions) cost more than the query itself,
    1.4-1.9 ms for 20. The row already holds the values; datetimes and UUIDs
    are written by the JSON renderer exactly as ``DateTimeField`` and
    ``UUIDField`` write them (a test holds the two serializers equal).
    """

    def to_representation(self, row: dict) -> dict:
        return {
            "id": row["id"],
            "category": row["category_slug"],
            "title": row["title"],
            "notes": row["notes"],
            "pinned": row["pinned"],
            "archived": row["archived"],
            "message_count": row["message_count"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "last_message_at": row["last_message_at"],
        }


class SessionCreateInputSerializer(serializers.Serializer):
    category = StrictSlugField(max_length=50)
    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false`` only: DRF's ``BooleanField`` also takes ``"true"``, ``1``, ``"on"``…"""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class SessionUpdateInputSerializer(serializers.Serializer):
    """``PATCH /api/sessions/{id}/``: any of the three, at least one."""

    title = StrictCharField(max_length=200, allow_blank=True, required=False)
    pinned = StrictBooleanField(required=False)
    archived = StrictBooleanField(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Give at least one of title, pinned and archived.")
        return attrs


class SessionListQuerySerializer(serializers.Serializer):
    """The list's query parameters (``page_size`` and ``cursor`` are the pagination's)."""

    archived = serializers.ChoiceField(
        choices=["false", "true", "all"],
        default="false",
        help_text="`false`: the sessions in use; `true`: the archived ones only; `all`: both.",
    )
    category = StrictSlugField(max_length=50, required=False, help_text="A category's slug.")
    q = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Words to find in titles, notes and message text (blank: no search).",
    )

    def to_internal_value(self, data):
        # DRF reads an empty query parameter as an absent one; here it is a mistake to say so.
        blank = {name: ["May not be blank."] for name in ("archived", "category") if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)

    def validate_archived(self, value: str) -> bool | None:
        return {"false": False, "true": True, "all": None}[value]


class ExportFormatSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "markdown"], default="json")


class SessionNotesInputSerializer(serializers.Serializer):
    notes = StrictCharField(max_length=20000, allow_blank=True, trim_whitespace=False)


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    role = serializers.ChoiceField(choices=Message.Role.choices, read_only=True)
    content = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Message.Status.choices, read_only=True)
    prompt_tokens = serializers.IntegerField(read_only=True)
    completion_tokens = serializers.IntegerField(read_only=True)
    cost = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class SessionExportSerializer(SessionSerializer):
    """A session with its whole conversation, oldest message first (``chats.exports`` writes it)."""

    messages = MessageSerializer(many=True, read_only=True)


class AccountExportSerializer(serializers.Serializer):
    """``GET /api/export/`` (``chats.exports`` streams it): every session, oldest first."""

    exported_at = serializers.DateTimeField(read_only=True)
    sessions = SessionExportSerializer(many=True, read_only=True)


class MessageInputSerializer(serializers.Serializer):
    content = StrictCharField(trim_whitespace=False, allow_blank=True)


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()


class ReplySerializer(serializers.Serializer):
    """The JSON answer (``Accept: application/json``) to a new message."""

    user_message = MessageSerializer()
    assistant_message = MessageSerializer()
    usage = UsageSerializer()
    cost = serializers.IntegerField()
    balance = serializers.IntegerField()
