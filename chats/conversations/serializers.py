"""Conversations on the wire: categories, sessions, messages, history and export queries."""

from rest_framework import serializers

from chats.models import Category, Message
from core.fields import StrictBooleanField, StrictCharField, StrictSlugField


class CategorySerializer(serializers.ModelSerializer):
    # Its catalogue model's prices (``categories_active`` reads the model with it).
    prompt_price = serializers.DecimalField(source="model.prompt_price", max_digits=10, decimal_places=4)
    completion_price = serializers.DecimalField(
        source="model.completion_price", max_digits=10, decimal_places=4
    )

    class Meta:
        model = Category
        fields = ["slug", "name", "description", "prompt_price", "completion_price"]
        read_only_fields = fields


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


class SessionUpdateInputSerializer(serializers.Serializer):
    """``PATCH /api/sessions/{id}/``: any of the three, at least one."""

    title = StrictCharField(max_length=200, allow_blank=True, required=False)
    pinned = StrictBooleanField(required=False)
    archived = StrictBooleanField(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Give at least one of title, pinned and archived.")
        return attrs


class QueryStringSerializer(serializers.Serializer):
    """Query-string parameters. DRF reads a blank value as an absent one; here it is a mistake the
    client should hear about (as the schema says), except for the fields in ``blank_allowed``."""

    blank_allowed: tuple[str, ...] = ()

    def to_internal_value(self, data):
        blank = {
            name: ["May not be blank."]
            for name in self.fields
            if name not in self.blank_allowed and data.get(name) == ""
        }
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)


class SessionListQuerySerializer(QueryStringSerializer):
    """The list's query parameters (``page_size`` and ``cursor`` are the pagination's)."""

    blank_allowed = ("q",)
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

    def validate_archived(self, value: str) -> bool | None:
        return {"false": False, "true": True, "all": None}[value]


class ExportFormatSerializer(QueryStringSerializer):
    format = serializers.ChoiceField(choices=["json", "markdown"], default="json")
    leaf = serializers.UUIDField(
        required=False,
        help_text=(
            "Markdown: a message of the session, whose branch the transcript follows. Absent: the "
            "newest message's (the current branch). The JSON export holds every message, with its "
            "`parent_id`."
        ),
    )


class SessionNotesInputSerializer(serializers.Serializer):
    notes = StrictCharField(max_length=20000, allow_blank=True, trim_whitespace=False)


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)
    role = serializers.ChoiceField(choices=Message.Role.choices, read_only=True)
    content = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Message.Status.choices, read_only=True)
    prompt_tokens = serializers.IntegerField(read_only=True)
    completion_tokens = serializers.IntegerField(read_only=True)
    cost = serializers.IntegerField(read_only=True)
    finish_reason = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class SessionExportSerializer(SessionSerializer):
    """A session with its whole conversation, oldest message first (``exports`` writes it)."""

    messages = MessageSerializer(many=True, read_only=True)


class AccountExportSerializer(serializers.Serializer):
    """``GET /api/export/`` (``chats.conversations.exports`` streams it): every session, oldest first."""

    exported_at = serializers.DateTimeField(read_only=True)
    sessions = SessionExportSerializer(many=True, read_only=True)


class HistoryQuerySerializer(QueryStringSerializer):
    """The history's query parameters (``page_size`` and ``cursor`` are the pagination's)."""

    leaf = serializers.UUIDField(
        required=False,
        help_text="A message of the session: the branch ending there. Absent: the newest message's.",
    )
